using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// A TorchSharp model with LoRA or DoRA adapters attached, PEFT's <c>PeftModel</c> for .NET.
/// <code>
/// var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["fc1", "fc2"] });
/// var optimizer = torch.optim.Adam(lora.TrainableParameters());
/// // train model as usual; then lora.MergeAndUnload() or lora.SaveAdapter(dir)
/// </code>
/// The adapters are put into the model in place (the object you hold is the adapted model).
/// Its state dict keeps every base key unchanged and adds, per adapted module,
/// <c>&lt;path&gt;.lora_A.weight</c>, <c>&lt;path&gt;.lora_B.weight</c> and (DoRA)
/// <c>&lt;path&gt;.lora_magnitude_vector</c>, which map one-to-one to PEFT's adapter files.
/// </summary>
/// <remarks>
/// This class is the public face only. Which modules an adapter adapts is decided by <see cref="InjectionPlan"/>
/// (the same plan for <see cref="Wrap"/>, <see cref="AddAdapter"/> and every load), the layers are built by
/// <see cref="AdapterInjector"/>, the named adapters and the active one are kept by <see cref="AdapterRegistry"/>
/// (which swaps layers in the model through <see cref="ModuleSurgery"/>), and the adapter files are read and written
/// by <see cref="IO.AdapterFiles"/> (<see cref="LoraModelFiles"/> connects the two).
/// </remarks>
public sealed class LoraModel
{
    /// <summary>The name of the adapter <see cref="Wrap"/> creates unless told otherwise (PEFT's "default").</summary>
    public const string DefaultAdapterName = IO.AdapterFiles.DefaultAdapterName;

    private readonly AdapterRegistry _registry;

    private LoraModel(AdapterRegistry registry) => _registry = registry;

    /// <summary>The adapted model (the same object that was wrapped).</summary>
    public nn.Module Model => _registry.Model;

    /// <summary>The name of the active adapter, the one the model computes with (PEFT's <c>active_adapter</c>).</summary>
    public string ActiveAdapter => _registry.Active;

    /// <summary>The names of all adapters, in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => _registry.Names;

    /// <summary>The active adapter's options.</summary>
    public LoraConfig Config => _registry.ActiveAdapter.Config;

    /// <summary>Every adapter's options by name (PEFT's <c>peft_config</c>).</summary>
    public IReadOnlyDictionary<string, LoraConfig> Configs => _registry.Names.ToDictionary(n => n, n => _registry.Get(n).Config, StringComparer.Ordinal);

    /// <summary>The active adapter's layers by module path, in model order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers { get { ThrowIfUnloaded(); return _registry.ActiveAdapter.Layers; } }

    /// <summary>Which modules the active adapter adapted and which targets matched nothing.</summary>
    public InjectionReport Report => _registry.ActiveAdapter.Report;

    /// <summary>The paths of the active adapter's <see cref="LoraConfig.ModulesToSave"/> modules, in model order.</summary>
    public IReadOnlyList<string> ModulesToSave => ModulesToSaveOf(_registry.Active);

    /// <summary>The registry behind this model, for the adapter files (<see cref="LoraModelFiles"/>).</summary>
    internal AdapterRegistry Registry => _registry;

    /// <summary>
    /// Attaches an adapter to every supported layer of <paramref name="model"/> that <paramref name="config"/>
    /// targets, freezes every base parameter and leaves only adapter parameters (and the modules of
    /// <see cref="LoraConfig.ModulesToSave"/>) trainable (PEFT's <c>get_peft_model</c> with <c>bias="none"</c>).
    /// Layers are found at any depth in <c>Sequential</c>, <c>ModuleList</c>, <c>ModuleDict</c> and fields of user
    /// modules declared as <c>Module&lt;Tensor, Tensor&gt;</c>. On any error the model is left as it was.
    /// </summary>
    /// <param name="model">The model to adapt, in place.</param>
    /// <param name="config">The adapter's options.</param>
    /// <param name="adapterName">The adapter's name (PEFT's <c>adapter_name</c>); more can be added with <see cref="AddAdapter"/>.</param>
    /// <exception cref="LoraConfigException">An option is invalid or the targets match no supported layer.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot reliably replace it.</exception>
    /// <exception cref="ConvBackendException">The model has convolutions and this CPU's float32 conv2d input gradient is wrong beyond repair (<see cref="ConvBackwardGuard"/>).</exception>
    public static LoraModel Wrap(nn.Module model, LoraConfig config, string adapterName = DefaultAdapterName)
        => WrapWithBudget(model, config, adapterName, budget: null);

    /// <summary>As the public overload, with the regex time budget of the whole operation given (tests).</summary>
    internal static LoraModel WrapWithBudget(nn.Module model, LoraConfig config, string adapterName, RegexBudget? budget)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        CheckAdapterName(adapterName);
        config.Validate();
        CheckNotSingleLayer(model);
        return Inject(model, InjectionPlan.Create(AdapterRegistry.BaseView(model, owns: null), config, budget), adapterName);
    }

    /// <summary>
    /// Wraps <paramref name="model"/> with the adapter <paramref name="plan"/> describes (a load passes the plan its file
    /// was checked against); on any error the model is left as it was.
    /// </summary>
    internal static LoraModel Inject(nn.Module model, InjectionPlan plan, string adapterName)
    {
        CheckAdapterName(adapterName);
        CheckNotSingleLayer(model);
        var requiresGrad = model.parameters().Select(p => (p, p.requires_grad)).ToList();
        NamedAdapter adapter;
        try
        {
            adapter = AdapterInjector.Build(adapterName, plan);
        }
        catch
        {
            // Building a layer freezes its base weight before a later layer may be refused.
            foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            throw;
        }
        var registry = new AdapterRegistry(model);
        try
        {
            registry.Register(adapter);
            registry.Place(adapterName);
        }
        catch
        {
            registry.Forget(adapter);
            foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            throw;
        }
        // PEFT's mark_only_lora_as_trainable with bias="none"; then modules_to_save train (ModulesToSaveWrapper).
        var adapterParams = adapter.Layers.Values.SelectMany(l => l.AdapterParameters().Select(p => p.Parameter.Handle)).ToHashSet();
        foreach (var p in model.parameters()) p.requires_grad = adapterParams.Contains(p.Handle);
        registry.LoadModulesToSave();
        return new LoraModel(registry);
    }

    /// <summary>
    /// Adds a second (third, …) adapter named <paramref name="adapterName"/>, built from <paramref name="config"/>
    /// on the base layers (its targets may differ from the other adapters'); PEFT's <c>add_adapter</c>. Like PEFT
    /// it does not activate the new adapter: call <see cref="SetAdapter"/>. On any error nothing changes.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, invalid as a folder name, or taken.</exception>
    /// <exception cref="LoraConfigException">An option is invalid or the targets match no supported layer.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot replace it, or a module is both an adapter target and a module to save of different adapters.</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged (unmerge first), or the adapters were unloaded.</exception>
    public void AddAdapter(string adapterName, LoraConfig config) => AddAdapterWithBudget(adapterName, config, budget: null);

    /// <summary>As the public overload, with the regex time budget of the whole operation given (tests).</summary>
    internal void AddAdapterWithBudget(string adapterName, LoraConfig config, RegexBudget? budget)
    {
        ThrowIfUnloaded();
        ArgumentNullException.ThrowIfNull(config);
        CheckNewAdapterName(adapterName);
        config.Validate();
        ThrowIfMerged($"add adapter '{adapterName}'");
        AddPlanned(adapterName, InjectionPlan.Create(_registry.BaseView(), config, budget));
    }

    /// <summary>Adds the adapter <paramref name="plan"/> describes (a load passes the plan its file was checked against); on any error nothing changes.</summary>
    internal void AddPlanned(string adapterName, InjectionPlan plan)
    {
        var adapter = AdapterInjector.Build(adapterName, plan);
        var conflict = adapter.ModulesToSave.FirstOrDefault(m => _registry.AdaptedPaths.Any(p => InjectionPlan.IsWithin(p, m)))
                       ?? adapter.Layers.Keys.FirstOrDefault(p => _registry.SavedPaths.Any(m => InjectionPlan.IsWithin(p, m)));
        if (conflict is not null)
        {
            adapter.Dispose();
            throw new AdapterInjectionException(
                $"Module '{conflict}' would be trained in full (modules_to_save) by one adapter and carry a LoRA adapter of another; a module can be only one of the two.");
        }
        _registry.Register(adapter);
        try
        {
            // Put the new layers in once and take them out again: a slot that refuses an adapter fails here, not in SetAdapter.
            _registry.Place(adapterName);
            _registry.Place(_registry.Active);
        }
        catch
        {
            _registry.Forget(adapter);
            throw;
        }
    }

    /// <summary>
    /// Makes <paramref name="adapterName"/> the adapter the model computes with and trains; PEFT's <c>set_adapter</c>.
    /// The other adapters stay attached, unchanged, and their parameters leave the model's <c>parameters()</c> until
    /// they are active again. Switching is exact: the model computes what it computed when that adapter was last active.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged (unmerge first, as PEFT requires), or the adapters were unloaded.</exception>
    public void SetAdapter(string adapterName)
    {
        ThrowIfUnloaded();
        var adapter = _registry.Get(adapterName);
        if (adapterName == _registry.Active) return;
        ThrowIfMerged($"switch to adapter '{adapterName}'");
        _registry.Activate(adapter.Name);
    }

    /// <summary>
    /// Deletes the adapter <paramref name="adapterName"/>; PEFT's <c>delete_adapter</c>. If it was active, the first
    /// remaining adapter (in the order they were added) becomes active, as in PEFT. The last adapter cannot be
    /// deleted: <see cref="Unload"/> removes it and returns the base model.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    /// <exception cref="InvalidOperationException">It is the only adapter, or it is active and merged, or the adapters were unloaded.</exception>
    public void DeleteAdapter(string adapterName)
    {
        ThrowIfUnloaded();
        var adapter = _registry.Get(adapterName);
        if (_registry.Count == 1)
            throw new InvalidOperationException($"Adapter '{adapterName}' is the only adapter; call Unload() to remove it and get the base model back.");
        if (adapterName == _registry.Active)
        {
            ThrowIfMerged($"delete adapter '{adapterName}'");
            SetAdapter(_registry.Names.First(n => n != adapterName));
        }
        _registry.Forget(adapter);
    }

    /// <summary>The layers of adapter <paramref name="adapterName"/> by module path (in the model only while it is active).</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyDictionary<string, LoraLayer> LayersOf(string adapterName) { ThrowIfUnloaded(); return _registry.Get(adapterName).Layers; }

    /// <summary>The paths of adapter <paramref name="adapterName"/>'s modules to save, in model order.</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyList<string> ModulesToSaveOf(string adapterName) => _registry.Get(adapterName).ModulesToSave;

    /// <summary>
    /// The values of adapter <paramref name="adapterName"/>'s copy of module <paramref name="path"/> (one of its
    /// <see cref="ModulesToSaveOf"/>) by the module's state-dict names. The tensors are live: do not dispose them.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name, or it does not train that module in full.</exception>
    public IReadOnlyDictionary<string, Tensor> ModuleToSaveValues(string adapterName, string path)
    {
        ThrowIfUnloaded();
        return _registry.ModuleToSaveValues(adapterName, path);
    }

    /// <summary>The parameters an optimizer should train: the adapters' (requires_grad).</summary>
    public IEnumerable<Parameter> TrainableParameters()
    {
        ThrowIfUnloaded();
        return Model.parameters().Where(p => p.requires_grad);
    }

    /// <summary>
    /// Trainable and total parameter counts of the model as it computes now (PEFT's <c>print_trainable_parameters</c>;
    /// its ToString is PEFT's line). With several adapters only the active one is in the model, so unlike PEFT the
    /// total does not include the inactive adapters' parameters.
    /// </summary>
    public ParameterCount CountParameters()
    {
        long trainable = 0, total = 0;
        foreach (var p in Model.parameters())
        {
            total += p.numel();
            if (p.requires_grad) trainable += p.numel();
        }
        return new ParameterCount(trainable, total);
    }

    /// <summary>
    /// When false the active adapter is bypassed and the model computes exactly its base output: LoRA layers skip their
    /// update and modules to save compute with their original values (PEFT's <c>disable_adapter_layers</c>). A merged
    /// adapter is unmerged first, as PEFT's layers do when they run with adapters disabled.
    /// </summary>
    public bool AdaptersEnabled
    {
        get => _registry.Enabled;
        set
        {
            ThrowIfUnloaded();
            if (!value && IsMerged) Unmerge();
            _registry.Enabled = value;
        }
    }

    /// <summary>Disables the adapters until the returned object is disposed (PEFT's <c>with model.disable_adapter():</c>).</summary>
    public IDisposable DisableAdapters()
    {
        var previous = AdaptersEnabled;
        AdaptersEnabled = false;
        return new Restore(() => AdaptersEnabled = previous);
    }

    /// <summary>True while the active adapter is folded into the base weights.</summary>
    public bool IsMerged => _registry.IsMerged;

    /// <summary>
    /// Selects PEFT's literal DoRA computation (for checking, or for second-order gradients, which the fast path's
    /// hand-written backward does not support) instead of the default fast path.
    /// </summary>
    public bool UseReferenceDora
    {
        get => _registry.UseReferenceDora;
        set => _registry.UseReferenceDora = value;
    }

    /// <summary>
    /// Folds the active adapter into its base weights; the model then runs at base speed. Modules to save are
    /// unaffected (they hold the adapter's values already).
    /// </summary>
    public void Merge()
    {
        ThrowIfUnloaded();
        foreach (var l in Layers.Values.Distinct().Where(l => !l.IsMerged)) l.Merge();
    }

    /// <summary>Restores the base weights after <see cref="Merge"/>.</summary>
    public void Unmerge()
    {
        ThrowIfUnloaded();
        foreach (var l in Layers.Values.Distinct().Where(l => l.IsMerged)) l.Unmerge();
    }

    /// <summary>
    /// Merges the active adapter and puts the plain base layers (now holding the merged weights) back into the
    /// model, which is returned; PEFT's <c>merge_and_unload</c>. Modules to save keep the active adapter's values,
    /// as PEFT puts the active adapter's copy in place. This LoraModel is unusable afterwards.
    /// </summary>
    public nn.Module MergeAndUnload()
    {
        Merge();
        return Unload();
    }

    /// <summary>
    /// Puts the base layers back without merging (PEFT's <c>unload</c>) and drops every adapter; modules to save keep
    /// the active adapter's values. Returns the model.
    /// </summary>
    public nn.Module Unload()
    {
        ThrowIfUnloaded();
        // The adapters' layers go; their names and configs stay readable (Config, Configs, AdapterNames).
        _registry.Unload();
        return Model;
    }

    /// <summary>Drops cached DoRA norms; needed only after writing into base weights in place by other means in eval mode.</summary>
    public void InvalidateCaches() => _registry.InvalidateCaches();

    /// <summary>
    /// Saves the adapters to <paramref name="directory"/> as PEFT's <c>save_pretrained</c> does
    /// (<c>adapter_config.json</c> and <c>adapter_model.safetensors</c>; "default" in the directory, any other adapter
    /// in a sub-folder named after it; <see cref="IO.AdapterSaveOptions.SelectedAdapters"/> picks some), so that Python
    /// loads them with <c>PeftModel.from_pretrained(base, directory)</c>.
    /// </summary>
    /// <remarks>
    /// The new files are written and flushed to disk in a hidden sibling directory, which then replaces
    /// <paramref name="directory"/> by renames: any reader finds the complete old pair or the complete new pair.
    /// A crash between the two renames leaves no directory and the old pair in a hidden
    /// <c>.&lt;name&gt;.dorasharp-previous-…</c> sibling, which <see cref="LoadAdapter(nn.Module, string, bool, string)"/> then
    /// points to. Because the directory is replaced as a whole, it may hold only the adapter files and PEFT's
    /// <c>README.md</c> (kept); anything else is refused rather than deleted. The adapters may be merged: merging does
    /// not change A, B or the magnitude. See docs/adapter-format.md for the format.
    /// </remarks>
    /// <param name="directory">The adapter directory to create or replace; its parents are created.</param>
    /// <param name="options">Informational config fields (base model name, auto_mapping) and the adapters to save; null for PEFT's defaults.</param>
    /// <exception cref="IOException">The files could not be written; the previous adapter, if any, is unchanged.</exception>
    /// <exception cref="ArgumentException">A selected adapter does not exist, or the selection is empty.</exception>
    /// <exception cref="InvalidOperationException">The adapters were unloaded.</exception>
    public void SaveAdapter(string directory, IO.AdapterSaveOptions? options = null) => LoraModelFiles.Save(this, directory, options);

    /// <summary>
    /// Attaches the adapter saved in <paramref name="directory"/> (by DoraSharp or by PEFT) to <paramref name="model"/>,
    /// which must have the module names the adapter was trained on, and loads its weights; PEFT's
    /// <c>PeftModel.from_pretrained(model, directory, is_trainable=...)</c>.
    /// </summary>
    /// <remarks>
    /// Everything is checked before anything changes: the config (options DoraSharp does not implement are refused by
    /// name), the safetensors structure, that the keys are exactly those the config and the model call for, and every
    /// dtype and shape. A load that throws leaves the model exactly as it was.
    /// </remarks>
    /// <param name="model">The base model, without adapters; adapted in place.</param>
    /// <param name="directory">The adapter directory.</param>
    /// <param name="isTrainable">
    /// False (PEFT's default) freezes the adapters too and puts the model in eval mode, for inference; true leaves
    /// the adapters trainable, to continue training.
    /// </param>
    /// <param name="adapterName">The name the adapter gets (PEFT's <c>adapter_name</c>).</param>
    /// <returns>The adapted model.</returns>
    /// <exception cref="IO.AdapterFormatException">A file is missing or malformed; the message names the file and the field or key.</exception>
    /// <exception cref="IO.AdapterMismatchException">The adapter does not fit the model; the message names the file and the key or field.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot replace it (as <see cref="Wrap"/>).</exception>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    /// <exception cref="IOException">A file cannot be read.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters",
        Justification = "PEFT's two loads: the static one (PeftModel.from_pretrained) takes the model first, the instance one (load_adapter) a directory; no call binds to both.")]
    public static LoraModel LoadAdapter(nn.Module model, string directory, bool isTrainable = false, string adapterName = DefaultAdapterName)
        => LoraModelFiles.Load(model, directory, isTrainable, adapterName, new RegexBudget());

    /// <summary>
    /// Adds the adapter saved in <paramref name="directory"/> beside the existing ones, named <paramref name="adapterName"/>;
    /// PEFT's <c>PeftModel.load_adapter(directory, adapter_name, is_trainable)</c>. The adapter is built on the base
    /// layers (whatever the other adapters target) and, as in PEFT, not activated. Everything is checked before
    /// anything changes; a failure leaves this model as it was.
    /// </summary>
    /// <exception cref="ArgumentException">The name is invalid or taken.</exception>
    /// <exception cref="IO.AdapterFormatException">A file is missing or malformed (as for <see cref="LoadAdapter(nn.Module, string, bool, string)"/>).</exception>
    /// <exception cref="IO.AdapterMismatchException">The adapter does not fit the model (as for <see cref="LoadAdapter(nn.Module, string, bool, string)"/>).</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged, or the adapters were unloaded.</exception>
    [System.Diagnostics.CodeAnalysis.SuppressMessage("ApiDesign", "RS0026:Do not add multiple public overloads with optional parameters",
        Justification = "PEFT's two loads: the static one (PeftModel.from_pretrained) takes the model first, the instance one (load_adapter) a directory; no call binds to both.")]
    public void LoadAdapter(string directory, string adapterName, bool isTrainable = false)
        => LoraModelFiles.LoadInto(this, directory, adapterName, isTrainable);

    /// <summary>
    /// Loads the weights of the adapter in <paramref name="directory"/> into the active adapter, which must have the
    /// same r, lora_alpha, use_dora and use_rslora and adapt exactly the modules the file's config selects
    /// (target_modules, exclude_modules, modules_to_save). Dropout and init scheme may differ: they do not affect the
    /// weights. The file is first checked exactly as <see cref="LoadAdapter(nn.Module, string, bool, string)"/> checks it
    /// on this model's base layers, so a file that load refuses is never loaded here. Nothing changes if it throws.
    /// </summary>
    /// <exception cref="IO.AdapterFormatException">A file is missing or malformed.</exception>
    /// <exception cref="IO.AdapterMismatchException">The file does not fit the model, or its options, modules, keys or shapes differ from the adapter's.</exception>
    /// <exception cref="InvalidOperationException">The adapters are merged (unmerge first) or were unloaded.</exception>
    public void LoadAdapterWeights(string directory) => LoraModelFiles.LoadWeights(this, directory);

    /// <summary>Throws when the adapters were unloaded.</summary>
    internal void ThrowIfUnloaded()
    {
        if (_registry.IsUnloaded) throw new InvalidOperationException("The adapters were unloaded (MergeAndUnload/Unload); use the returned model.");
    }

    /// <summary>Refuses an invalid or taken adapter name, naming the adapters there are.</summary>
    internal void CheckNewAdapterName(string adapterName)
    {
        CheckAdapterName(adapterName);
        if (_registry.Contains(adapterName))
            throw new ArgumentException($"An adapter named '{adapterName}' exists already (adapters: {string.Join(", ", _registry.Names)}); delete it first or choose another name.", nameof(adapterName));
    }

    /// <summary>Refuses a change while the active adapter is merged.</summary>
    internal void ThrowIfMerged(string action)
    {
        if (IsMerged)
            throw new InvalidOperationException($"Cannot {action}: adapter '{_registry.Active}' is merged into the base weights; call Unmerge() first.");
    }

    private static void CheckAdapterName(string adapterName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapterName);
        // PEFT saves a non-default adapter in a sub-folder named after it, and keys must stay parseable.
        if (adapterName is "." or ".." || adapterName.IndexOfAny(['/', '\\', '.', '\0']) >= 0 || adapterName.Trim() != adapterName)
            throw new ArgumentException(
                $"Adapter name '{adapterName}' is invalid: it names a sub-folder when saved, so it may not contain '/', '\\', '.' or NUL, nor start or end with spaces.",
                nameof(adapterName));
    }

    private static void CheckNotSingleLayer(nn.Module model)
    {
        if (model is LoraLayer || LoraLayerFactory.IsSupported(model))
            throw new AdapterInjectionException(
                $"The model itself is a single {model.GetType().Name}; construct the adapter layer directly (new LoraLinear(layer, config), LoraEmbedding or LoraConv2d).");
    }

    private sealed class Restore(Action action) : IDisposable
    {
        private Action? _action = action;
        public void Dispose() { _action?.Invoke(); _action = null; }
    }
}
