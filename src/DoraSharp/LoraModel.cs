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
public sealed partial class LoraModel
{
    /// <summary>The name of the adapter <see cref="Wrap"/> creates unless told otherwise (PEFT's "default").</summary>
    public const string DefaultAdapterName = "default";

    private readonly Dictionary<string, NamedAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    // Every path some adapter adapts → the base module that sits there when no adapter does.
    private readonly Dictionary<string, nn.Module> _baseModules = new(StringComparer.Ordinal);
    // Every module some adapter trains in full (modules_to_save), by path.
    private readonly Dictionary<string, ModuleToSave> _modulesToSave = new(StringComparer.Ordinal);
    private string _active;
    private bool _enabled = true;
    private bool _useReferenceDora;
    private bool _unloaded;

    private LoraModel(nn.Module model, NamedAdapter first)
    {
        Model = model;
        _active = first.Name;
    }

    /// <summary>The adapted model (the same object that was wrapped).</summary>
    public nn.Module Model { get; }

    /// <summary>The name of the active adapter, the one the model computes with (PEFT's <c>active_adapter</c>).</summary>
    public string ActiveAdapter => _active;

    /// <summary>The names of all adapters, in the order they were added.</summary>
    public IReadOnlyList<string> AdapterNames => _order;

    /// <summary>The active adapter's options.</summary>
    public LoraConfig Config => _adapters[_active].Config;

    /// <summary>Every adapter's options by name (PEFT's <c>peft_config</c>).</summary>
    public IReadOnlyDictionary<string, LoraConfig> Configs => _order.ToDictionary(n => n, n => _adapters[n].Config, StringComparer.Ordinal);

    /// <summary>The active adapter's layers by module path, in model order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers { get { ThrowIfUnloaded(); return _adapters[_active].Layers; } }

    /// <summary>Which modules the active adapter adapted and which targets matched nothing.</summary>
    public InjectionReport Report => _adapters[_active].Report;

    /// <summary>The paths of the active adapter's <see cref="LoraConfig.ModulesToSave"/> modules, in model order.</summary>
    public IReadOnlyList<string> ModulesToSave => ModulesToSaveOf(_active);

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
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        CheckAdapterName(adapterName);
        config.Validate();
        if (model is LoraLayer || LoraLayerFactory.IsSupported(model))
            throw new AdapterInjectionException(
                $"The model itself is a single {model.GetType().Name}; construct the adapter layer directly (new LoraLinear(layer, config), LoraEmbedding or LoraConv2d).");

        var requiresGrad = model.parameters().Select(p => (p, p.requires_grad)).ToList();
        NamedAdapter adapter;
        try
        {
            adapter = Build(adapterName, config, BaseView(model, owner: null));
        }
        catch
        {
            // Building a layer freezes its base weight before a later layer may be refused.
            foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            throw;
        }
        var lora = new LoraModel(model, adapter);
        try
        {
            lora.Register(adapter);
            lora.Place(adapterName);
        }
        catch
        {
            lora.Forget(adapter);
            foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            throw;
        }
        // PEFT's mark_only_lora_as_trainable with bias="none"; then modules_to_save train (ModulesToSaveWrapper).
        var adapterParams = adapter.Layers.Values.SelectMany(l => l.AdapterParameters().Select(p => p.Parameter.Handle)).ToHashSet();
        foreach (var p in model.parameters()) p.requires_grad = adapterParams.Contains(p.Handle);
        lora.LoadModulesToSave();
        return lora;
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
    public void AddAdapter(string adapterName, LoraConfig config)
    {
        ThrowIfUnloaded();
        ArgumentNullException.ThrowIfNull(config);
        CheckAdapterName(adapterName);
        if (_adapters.ContainsKey(adapterName))
            throw new ArgumentException($"An adapter named '{adapterName}' exists already (adapters: {string.Join(", ", _order)}); delete it first or choose another name.", nameof(adapterName));
        config.Validate();
        ThrowIfMerged($"add adapter '{adapterName}'");

        var adapter = Build(adapterName, config, BaseView(Model, this));
        var conflict = adapter.ModulesToSave.FirstOrDefault(m => _baseModules.Keys.Any(p => IsWithin(p, m)))
                       ?? adapter.Layers.Keys.FirstOrDefault(p => _modulesToSave.Keys.Any(m => IsWithin(p, m)));
        if (conflict is not null)
        {
            adapter.Dispose();
            throw new AdapterInjectionException(
                $"Module '{conflict}' would be trained in full (modules_to_save) by one adapter and carry a LoRA adapter of another; a module can be only one of the two.");
        }
        Register(adapter);
        try
        {
            // Put the new layers in once and take them out again: a slot that refuses an adapter fails here, not in SetAdapter.
            Place(adapterName);
            Place(_active);
        }
        catch
        {
            Forget(adapter);
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
        var adapter = Get(adapterName);
        if (adapterName == _active) return;
        ThrowIfMerged($"switch to adapter '{adapterName}'");
        Place(adapter.Name);
        _active = adapter.Name;
        ApplySwitches();
        LoadModulesToSave();
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
        var adapter = Get(adapterName);
        if (_adapters.Count == 1)
            throw new InvalidOperationException($"Adapter '{adapterName}' is the only adapter; call Unload() to remove it and get the base model back.");
        if (adapterName == _active)
        {
            ThrowIfMerged($"delete adapter '{adapterName}'");
            SetAdapter(_order.First(n => n != adapterName));
        }
        Forget(adapter);
    }

    /// <summary>The layers of adapter <paramref name="adapterName"/> by module path (in the model only while it is active).</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyDictionary<string, LoraLayer> LayersOf(string adapterName) { ThrowIfUnloaded(); return Get(adapterName).Layers; }

    /// <summary>The paths of adapter <paramref name="adapterName"/>'s modules to save, in model order.</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyList<string> ModulesToSaveOf(string adapterName) => Get(adapterName).ModulesToSave;

    /// <summary>
    /// The values of adapter <paramref name="adapterName"/>'s copy of module <paramref name="path"/> (one of its
    /// <see cref="ModulesToSaveOf"/>) by the module's state-dict names. The tensors are live: do not dispose them.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> ModuleToSaveValues(string adapterName, string path)
    {
        ThrowIfUnloaded();
        var adapter = Get(adapterName);
        if (!adapter.ModulesToSave.Contains(path))
            throw new ArgumentException($"Adapter '{adapterName}' trains no module '{path}' in full; its modules to save are: {Listing(adapter.ModulesToSave)}.", nameof(path));
        return _modulesToSave[path].Values(adapterName);
    }

    /// <summary>
    /// Sets whether adapter <paramref name="adapterName"/> trains: its LoRA parameters and, while it is active, its
    /// modules to save (PEFT's <c>is_trainable</c> on load).
    /// </summary>
    internal void SetTrainable(string adapterName, bool trainable)
    {
        var adapter = Get(adapterName);
        foreach (var layer in adapter.Layers.Values.Distinct())
            foreach (var (_, parameter) in layer.AdapterParameters()) parameter.requires_grad = trainable;
        adapter.ModulesToSaveTrainable = trainable;
        LoadModulesToSave();
    }

    /// <summary>Finds the targets and modules to save of <paramref name="config"/> in the base view and builds the adapter layers (not yet in the model).</summary>
    private static NamedAdapter Build(string name, LoraConfig config, List<(string Path, nn.Module Module)> view)
    {
        var matcher = new TargetMatcher(config);
        var toSave = FindModulesToSave(view, config, matcher);
        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<string>();
        foreach (var (path, module) in view)
        {
            if (!matcher.MatchesTarget(path)) continue;
            if (matcher.IsExcluded(path) || toSave.Any(m => IsWithin(path, m))) { excluded.Add(path); continue; }
            if (module is LoraLayer)
                throw new AdapterInjectionException($"Module '{path}' already has an adapter; add more adapters with AddAdapter on its LoraModel, or unload it before wrapping again.");
            if (LoraLayerFactory.IsSupported(module)) { targets.Add((path, module)); continue; }
            // A list entry that names a leaf of another type is a mistake worth reporting (PEFT raises too);
            // containers and regex hits on other types are simply not adaptable.
            if (config.TargetModules is not null && !module.named_children().Any()
                && config.TargetModules.Any(t => TargetMatcher.NameMatches(path, t)))
                throw new LoraConfigException(nameof(LoraConfig.TargetModules), path,
                    $"module '{path}' is a {module.GetType().Name}; only {LoraLayerFactory.SupportedTypes} layers can be adapted");
        }

        if (targets.Count == 0)
        {
            var available = view.Where(c => LoraLayerFactory.IsSupported(c.Module)).Select(c => c.Path).ToList();
            var value = config.TargetModules is not null ? $"[{string.Join(", ", config.TargetModules)}]" : config.TargetModulesRegex;
            throw new LoraConfigException(nameof(config.TargetModules), value,
                $"it matches no {LoraLayerFactory.SupportedTypes} module of the model" +
                (excluded.Count > 0 ? $" that is not excluded (excluded: {string.Join(", ", excluded)})" : "") +
                $"; the model's {LoraLayerFactory.SupportedTypes} modules are: " +
                (available.Count == 0 ? "(none)" : string.Join(", ", available)));
        }

        // Gradients through any convolution (adapted or frozen) reach the adapters: rule out the known
        // float32 conv2d backward fault first, while the model is still untouched (docs/known-issues.md).
        if (view.Any(m => m.Module is Convolution)) ConvBackwardGuard.EnsureCorrect();

        var layers = new Dictionary<string, LoraLayer>(StringComparer.Ordinal);
        var bases = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        var byInstance = new Dictionary<nn.Module, LoraLayer>(ReferenceEqualityComparer.Instance);
        try
        {
            foreach (var (path, module) in targets)
            {
                // A layer shared by two paths (weight tying) gets one adapter, placed at both.
                if (!byInstance.TryGetValue(module, out var layer))
                    byInstance[module] = layer = CreateAdapter(path, module, config);
                layers[path] = layer;
                bases[path] = module;
            }
        }
        catch
        {
            foreach (var layer in byInstance.Values) layer.Dispose();
            throw;
        }
        var report = new InjectionReport(
            layers.Select(kv => new AdaptedModule(kv.Key, kv.Value.BaseLayer.GetType().Name, kv.Value.Weight.shape,
                kv.Value.AdapterParameters().Sum(p => p.Parameter.numel()))).ToList(),
            excluded,
            matcher.UnmatchedEntries(view.Select(c => c.Path)));
        return new NamedAdapter(name, config, layers, bases, toSave, report);
    }

    /// <summary>
    /// The modules of <see cref="LoraConfig.ModulesToSave"/> (PEFT's <c>_set_trainable</c>): the outermost modules whose
    /// path ends with an entry. Modules inside one are part of it; a module holding a LoRA layer cannot be one.
    /// </summary>
    internal static List<string> FindModulesToSave(List<(string Path, nn.Module Module)> view, LoraConfig config, TargetMatcher matcher)
    {
        var found = new List<string>();
        if (config.ModulesToSave is not { Count: > 0 }) return found;
        var instances = new Dictionary<nn.Module, string>(ReferenceEqualityComparer.Instance);
        foreach (var (path, module) in view)
        {
            if (!matcher.IsModuleToSave(path) || found.Any(f => path.StartsWith(f + ".", StringComparison.Ordinal))) continue;
            if (instances.TryGetValue(module, out var other))
                throw new AdapterInjectionException($"Modules to save '{other}' and '{path}' are one module reached by two paths (tied weights); train it in full at one path only.");
            instances[module] = path;
            found.Add(path);
        }
        if (found.Count == 0)
            throw new LoraConfigException(nameof(LoraConfig.ModulesToSave), $"[{string.Join(", ", config.ModulesToSave)}]",
                "it matches no module of the model (PEFT matches a module whose dotted path ends with an entry)");
        return found;
    }

    internal static bool IsWithin(string path, string ancestor) => path == ancestor || path.StartsWith(ancestor + ".", StringComparison.Ordinal);

    /// <summary>The adapter for one targeted layer; a refusal names the module and how to skip it.</summary>
    private static LoraLayer CreateAdapter(string path, nn.Module module, LoraConfig config)
    {
        try
        {
            return LoraLayerFactory.Create(module, config);
        }
        catch (AdapterInjectionException e)
        {
            throw new AdapterInjectionException(
                $"Module '{path}': {e.Message} To adapt the other modules, leave it out with LoraConfig.{nameof(LoraConfig.ExcludeModules)}.");
        }
    }

    /// <summary>The parameters an optimizer should train: the adapters' (requires_grad).</summary>
    public IEnumerable<Parameter> TrainableParameters()
    {
        ThrowIfUnloaded();
        return Model.parameters().Where(p => p.requires_grad);
    }

    /// <summary>Trainable and total parameter counts (PEFT's <c>print_trainable_parameters</c>; its ToString is PEFT's line).</summary>
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
    /// update and modules to save compute with their original values (PEFT's <c>disable_adapter_layers</c>).
    /// </summary>
    public bool AdaptersEnabled
    {
        get => _enabled;
        set
        {
            ThrowIfUnloaded();
            _enabled = value;
            ApplySwitches();
            LoadModulesToSave();
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
    public bool IsMerged => _adapters[_active].Layers.Values.Any(l => l.IsMerged);

    /// <summary>Selects PEFT's literal DoRA computation (for checking) instead of the default fast path.</summary>
    public bool UseReferenceDora
    {
        get => _useReferenceDora;
        set { _useReferenceDora = value; ApplySwitches(); }
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
        Place(null);
        foreach (var saved in _modulesToSave.Values)
        {
            if (saved.Adapters.Contains(_active)) saved.Load(_active, trainable: false);
            saved.Dispose();
        }
        _modulesToSave.Clear();
        _baseModules.Clear();
        // The adapters' layers go; their names and configs stay readable (Config, Configs, AdapterNames).
        foreach (var adapter in _adapters.Values) adapter.Dispose();
        _unloaded = true;
        return Model;
    }

    /// <summary>Drops cached DoRA norms; needed only after writing into base weights in place by other means in eval mode.</summary>
    public void InvalidateCaches()
    {
        foreach (var l in _adapters.Values.SelectMany(a => a.Layers.Values)) l.InvalidateCache();
    }

    #region Adapter files (PEFT format): forwarders to IO/AdapterFiles.cs

    /// <summary>
    /// Saves the adapters to <paramref name="directory"/> as PEFT does (<c>adapter_config.json</c> and
    /// <c>adapter_model.safetensors</c>; "default" in the directory, any other adapter in a sub-folder named after
    /// it; <see cref="IO.AdapterSaveOptions.SelectedAdapters"/> picks some), replacing it atomically; see <see cref="IO.AdapterFiles.Save(LoraModel, string, IO.AdapterSaveOptions?)"/>.
    /// </summary>
    public void SaveAdapter(string directory, IO.AdapterSaveOptions? options = null) => IO.AdapterFiles.Save(this, directory, options);

    /// <summary>
    /// Attaches the adapter saved in <paramref name="directory"/> (by DoraSharp or PEFT) to <paramref name="model"/>
    /// and loads its weights; PEFT's <c>PeftModel.from_pretrained</c>. See <see cref="IO.AdapterFiles.Load"/>.
    /// </summary>
    public static LoraModel LoadAdapter(nn.Module model, string directory, bool isTrainable = false, string adapterName = DefaultAdapterName)
        => IO.AdapterFiles.Load(model, directory, isTrainable, adapterName);

    /// <summary>
    /// Adds the adapter saved in <paramref name="directory"/> beside the existing ones, named <paramref name="adapterName"/>
    /// (not activated); PEFT's <c>load_adapter</c>. See <see cref="IO.AdapterFiles.LoadInto"/>.
    /// </summary>
    public void LoadAdapter(string directory, string adapterName, bool isTrainable = false)
        => IO.AdapterFiles.LoadInto(this, directory, adapterName, isTrainable);

    /// <summary>Loads an adapter's weights into these adapters; see <see cref="IO.AdapterFiles.LoadWeights"/>.</summary>
    public void LoadAdapterWeights(string directory) => IO.AdapterFiles.LoadWeights(this, directory);

    #endregion

    #region Adapter bookkeeping

    /// <summary>
    /// The model's modules as the adapters see them: at a path where a LoRA layer sits, its base layer (and not the
    /// layer's own lora_A, lora_B …), so every adapter is built on the base model whichever adapter is active.
    /// </summary>
    private static List<(string Path, nn.Module Module)> BaseView(nn.Module model, LoraModel? owner)
    {
        var all = ModuleSurgery.Descendants(model);
        var inside = all.Where(m => m.Module is LoraLayer).Select(m => m.Path + ".").ToList();
        return all.Where(m => !inside.Any(p => m.Path.StartsWith(p, StringComparison.Ordinal)))
                  .Select(m => m.Module is LoraLayer l && owner is not null && owner.Owns(l) ? (m.Path, l.BaseLayer) : m)
                  .ToList();
    }

    /// <summary>The model's modules with this LoraModel's layers shown as their base layers (see <see cref="BaseView(nn.Module, LoraModel?)"/>).</summary>
    internal List<(string Path, nn.Module Module)> BaseView() => BaseView(Model, this);

    private bool Owns(LoraLayer layer) => _adapters.Values.Any(a => a.Layers.ContainsValue(layer));

    private static void CheckAdapterName(string adapterName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapterName);
        // PEFT saves a non-default adapter in a sub-folder named after it, and keys must stay parseable.
        if (adapterName is "." or ".." || adapterName.IndexOfAny(['/', '\\', '.', '\0']) >= 0 || adapterName.Trim() != adapterName)
            throw new ArgumentException(
                $"Adapter name '{adapterName}' is invalid: it names a sub-folder when saved, so it may not contain '/', '\\', '.' or NUL, nor start or end with spaces.",
                nameof(adapterName));
    }

    private NamedAdapter Get(string adapterName)
    {
        ArgumentNullException.ThrowIfNull(adapterName);
        return _adapters.TryGetValue(adapterName, out var adapter)
            ? adapter
            : throw new ArgumentException($"No adapter is named '{adapterName}'; the adapters are: {Listing(_order)}.", nameof(adapterName));
    }

    private static string Listing(IEnumerable<string> names) => names.Any() ? string.Join(", ", names) : "(none)";

    private void ThrowIfMerged(string action)
    {
        if (IsMerged)
            throw new InvalidOperationException($"Cannot {action}: adapter '{_active}' is merged into the base weights; call Unmerge() first.");
    }

    /// <summary>Records the adapter's layers, base modules and modules to save (its layers are not placed yet).</summary>
    private void Register(NamedAdapter adapter)
    {
        _adapters[adapter.Name] = adapter;
        _order.Add(adapter.Name);
        foreach (var (path, module) in adapter.BaseModules) _baseModules.TryAdd(path, module);
        foreach (var path in adapter.ModulesToSave)
        {
            if (!_modulesToSave.TryGetValue(path, out var saved))
                _modulesToSave[path] = saved = new ModuleToSave(path, ModuleSurgery.Find(Model, path));
            saved.Add(adapter.Name);
        }
    }

    /// <summary>Removes a registered adapter that is not in the model (inactive, or never placed) and disposes its layers.</summary>
    private void Forget(NamedAdapter adapter)
    {
        _adapters.Remove(adapter.Name);
        _order.Remove(adapter.Name);
        foreach (var path in adapter.BaseModules.Keys)
            if (!_adapters.Values.Any(a => a.BaseModules.ContainsKey(path))) _baseModules.Remove(path);
        foreach (var path in adapter.ModulesToSave)
        {
            if (!_modulesToSave.TryGetValue(path, out var saved)) continue;
            saved.Remove(adapter.Name);
            if (saved.Adapters.Count == 0)
            {
                _modulesToSave.Remove(path);
                saved.Dispose();
            }
        }
        adapter.Dispose();
    }

    /// <summary>
    /// Puts adapter <paramref name="adapterName"/>'s layers (or, for null, the base layers) at every adapted path, and
    /// the base layer where that adapter has none. Undoes its own swaps if one is refused.
    /// </summary>
    private void Place(string? adapterName)
    {
        var layers = adapterName is null ? null : _adapters[adapterName].Layers;
        var swapped = new List<(string Path, nn.Module From, nn.Module To)>();
        try
        {
            foreach (var (path, baseModule) in _baseModules)
            {
                var current = ModuleSurgery.Find(Model, path);
                nn.Module desired = layers is not null && layers.TryGetValue(path, out var layer) ? layer : baseModule;
                if (ReferenceEquals(current, desired)) continue;
                // The base parameters the model holds now are the ones to keep (.to() may have replaced them).
                var (weight, bias) = current is LoraLayer from ? (from.Weight, from.Bias) : (current.get_parameter("weight")!, current.get_parameter("bias"));
                if (desired is LoraLayer to) to.AdoptBase(weight, bias);
                else if (current is LoraLayer leaving) desired = leaving.Unload(); // hands the current parameters to the base layer
                ModuleSurgery.Replace(Model, path, current, desired);
                swapped.Add((path, current, desired));
            }
        }
        catch
        {
            for (var i = swapped.Count - 1; i >= 0; i--) ModuleSurgery.Replace(Model, swapped[i].Path, swapped[i].To, swapped[i].From);
            throw;
        }
    }

    /// <summary>Applies the model-wide switches (enabled, reference DoRA) to the active adapter's layers.</summary>
    private void ApplySwitches()
    {
        foreach (var l in _adapters[_active].Layers.Values)
        {
            l.AdapterEnabled = _enabled;
            l.UseReferenceDora = _useReferenceDora;
            l.InvalidateCache();
        }
    }

    /// <summary>Gives every module to save the values it should compute with now: the active adapter's copy, or the original.</summary>
    private void LoadModulesToSave()
    {
        foreach (var saved in _modulesToSave.Values)
        {
            var holder = _enabled && saved.Adapters.Contains(_active) ? _active : ModuleToSave.Original;
            saved.Load(holder, trainable: _adapters[_active].ModulesToSaveTrainable);
        }
    }

    /// <summary>One named adapter: its options, its layers (in the model while active) and its modules to save.</summary>
    private sealed class NamedAdapter(string name, LoraConfig config, Dictionary<string, LoraLayer> layers,
        Dictionary<string, nn.Module> baseModules, List<string> modulesToSave, InjectionReport report) : IDisposable
    {
        public string Name { get; } = name;
        public LoraConfig Config { get; } = config;
        public Dictionary<string, LoraLayer> Layers { get; } = layers;
        public Dictionary<string, nn.Module> BaseModules { get; } = baseModules;
        public List<string> ModulesToSave { get; } = modulesToSave;
        public InjectionReport Report { get; } = report;

        /// <summary>False for an adapter loaded for inference: its modules to save stay frozen when active.</summary>
        public bool ModulesToSaveTrainable { get; set; } = true;

        public void Dispose()
        {
            foreach (var layer in Layers.Values.Distinct()) layer.Dispose();
        }
    }

    #endregion

    private void ThrowIfUnloaded()
    {
        if (_unloaded) throw new InvalidOperationException("The adapters were unloaded (MergeAndUnload/Unload); use the returned model.");
    }

    private sealed class Restore(Action action) : IDisposable
    {
        private Action? _action = action;
        public void Dispose() { _action?.Invoke(); _action = null; }
    }
}
