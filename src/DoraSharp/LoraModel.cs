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
/// Several named adapters (PEFT's <c>add_adapter</c>/<c>set_adapter</c>/<c>delete_adapter</c>) live in
/// LoraModel.NamedAdapters.cs.
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
        => WrapWithBudget(model, config, adapterName, budget: null);

    /// <summary>As the public overload; a load passes the <see cref="RegexBudget"/> its file checks already drew on.</summary>
    internal static LoraModel WrapWithBudget(nn.Module model, LoraConfig config, string adapterName, RegexBudget? budget)
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
            adapter = Build(adapterName, config, BaseView(model, owner: null), budget);
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

    /// <summary>Finds the targets and modules to save of <paramref name="config"/> in the base view and builds the adapter layers (not yet in the model).</summary>
    /// <exception cref="LoraConfigException">Also when the regex matches use up the budget (the inner exception is the <see cref="System.Text.RegularExpressions.RegexMatchTimeoutException"/>).</exception>
    private static NamedAdapter Build(string name, LoraConfig config, List<(string Path, nn.Module Module)> view, RegexBudget? budget)
    {
        var matcher = new TargetMatcher(config, budget);
        var toSave = FindModulesToSave(view, config, matcher);
        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<string>();
        foreach (var (path, module) in view)
        {
            bool matches;
            try { matches = matcher.MatchesTarget(path); }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException e)
            {
                throw new LoraConfigException(nameof(LoraConfig.TargetModulesRegex), config.TargetModulesRegex, RegexTimeoutMessage(e, view.Count, matcher.Budget), e);
            }
            if (!matches) continue;
            if (matcher.IsExcluded(path) || toSave.Any(m => IsWithin(path, m))) { excluded.Add(path); continue; }
            if (module is LoraLayer)
                throw new AdapterInjectionException($"Module '{path}' already has an adapter; add more adapters with AddAdapter on its LoraModel, or unload it before wrapping again.");
            if (LoraLayerFactory.IsSupported(module)) { targets.Add((path, module)); continue; }
            if (UnsupportedListedLeaf(config, path, module) is { } refusal) throw refusal;
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

    /// <summary>
    /// The refusal of a target list entry that names a leaf module of a type adapters cannot wrap (PEFT raises too), or
    /// null; containers and regex hits on other types are simply not adaptable. Shared with the adapter loads'
    /// <c>AdapterLayout.ForModel</c>, so a file is refused by the same rule and words as Wrap.
    /// </summary>
    internal static LoraConfigException? UnsupportedListedLeaf(LoraConfig config, string path, nn.Module module) =>
        config.TargetModules is not null && !LoraLayerFactory.IsSupported(module) && !module.named_children().Any()
            && config.TargetModules.Any(t => TargetMatcher.NameMatches(path, t))
            ? new LoraConfigException(nameof(LoraConfig.TargetModules), path,
                $"module '{path}' is a {module.GetType().Name}; only {LoraLayerFactory.SupportedTypes} layers can be adapted")
            : null;

    /// <summary>Why a regex was stopped: the pattern, the one budget for all paths, and where it stopped.</summary>
    internal static string RegexTimeoutMessage(System.Text.RegularExpressions.RegexMatchTimeoutException e, int paths, RegexBudget budget) =>
        $"matching it against the model's {paths} module paths took longer than the {budget.Limit.TotalSeconds:0.###} s allowed for all of them " +
        $"together (stopped at module path '{e.Input}' after {budget.Matches} matches); a pattern with nested quantifiers such as (a+)+ backtracks " +
        "exponentially: simplify it, or list the module names in TargetModules";

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
        get => _enabled;
        set
        {
            ThrowIfUnloaded();
            if (!value && IsMerged) Unmerge();
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

    /// <summary>
    /// Selects PEFT's literal DoRA computation (for checking, or for second-order gradients, which the fast path's
    /// hand-written backward does not support) instead of the default fast path.
    /// </summary>
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

    #region Injection: the model as adapters see it

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
