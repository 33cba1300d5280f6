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
public sealed class LoraModel
{
    private readonly Dictionary<string, LoraLayer> _layers;
    private bool _unloaded;

    private LoraModel(nn.Module model, LoraConfig config, Dictionary<string, LoraLayer> layers, InjectionReport report)
    {
        Model = model;
        Config = config;
        _layers = layers;
        Report = report;
    }

    /// <summary>The adapted model (the same object that was wrapped).</summary>
    public nn.Module Model { get; }

    /// <summary>The adapter options.</summary>
    public LoraConfig Config { get; }

    /// <summary>The adapter layers by module path, in model order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers { get { ThrowIfUnloaded(); return _layers; } }

    /// <summary>Which modules were adapted and which targets matched nothing.</summary>
    public InjectionReport Report { get; }

    /// <summary>
    /// Attaches an adapter to every supported layer of <paramref name="model"/> that <paramref name="config"/>
    /// targets, freezes every base parameter and leaves only adapter parameters trainable
    /// (PEFT's <c>get_peft_model</c> with <c>bias="none"</c>). Layers are found at any depth in
    /// <c>Sequential</c>, <c>ModuleList</c>, <c>ModuleDict</c> and fields of user modules declared as
    /// <c>Module&lt;Tensor, Tensor&gt;</c>. On any error the model is left as it was.
    /// </summary>
    /// <exception cref="LoraConfigException">An option is invalid or the targets match no supported layer.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot reliably replace it.</exception>
    /// <exception cref="ConvBackendException">The model has convolutions and this CPU's float32 conv2d input gradient is wrong beyond repair (<see cref="ConvBackwardGuard"/>).</exception>
    public static LoraModel Wrap(nn.Module model, LoraConfig config)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        if (model is LoraLayer || LoraLayerFactory.IsSupported(model))
            throw new AdapterInjectionException(
                $"The model itself is a single {model.GetType().Name}; construct the adapter layer directly (new LoraLinear(layer, config), LoraEmbedding or LoraConv2d).");

        var matcher = new TargetMatcher(config);
        var all = ModuleSurgery.Descendants(model);
        var insideAdapters = all.Where(m => m.Module is LoraLayer).Select(m => m.Path + ".").ToList();
        var candidates = all.Where(m => !insideAdapters.Any(p => m.Path.StartsWith(p, StringComparison.Ordinal))).ToList();

        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<string>();
        foreach (var (path, module) in candidates)
        {
            if (!matcher.MatchesTarget(path)) continue;
            if (matcher.IsExcluded(path)) { excluded.Add(path); continue; }
            if (module is LoraLayer)
                throw new AdapterInjectionException($"Module '{path}' already has an adapter; unload it before wrapping again.");
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
            var available = candidates.Where(c => LoraLayerFactory.IsSupported(c.Module)).Select(c => c.Path).ToList();
            var value = config.TargetModules is not null ? $"[{string.Join(", ", config.TargetModules)}]" : config.TargetModulesRegex;
            throw new LoraConfigException(nameof(config.TargetModules), value,
                $"it matches no {LoraLayerFactory.SupportedTypes} module of the model" +
                (excluded.Count > 0 ? $" that is not excluded (excluded: {string.Join(", ", excluded)})" : "") +
                $"; the model's {LoraLayerFactory.SupportedTypes} modules are: " +
                (available.Count == 0 ? "(none)" : string.Join(", ", available)));
        }

        // Gradients through any convolution (adapted or frozen) reach the adapters: rule out the known
        // float32 conv2d backward fault first, while the model is still untouched (docs/known-issues.md).
        if (all.Any(m => m.Module is Convolution)) ConvBackwardGuard.EnsureCorrect();

        // Build every adapter first, then swap them in; undo the swaps if one is refused.
        var layers = new Dictionary<string, LoraLayer>();
        var byInstance = new Dictionary<nn.Module, LoraLayer>(ReferenceEqualityComparer.Instance);
        var done = new List<(string Path, nn.Module Original, LoraLayer Adapter)>();
        var requiresGrad = model.parameters().Select(p => (p, p.requires_grad)).ToList();
        try
        {
            foreach (var (path, module) in targets)
            {
                // A layer shared by two paths (weight tying) gets one adapter, placed at both.
                if (!byInstance.TryGetValue(module, out var adapter))
                    byInstance[module] = adapter = CreateAdapter(path, module, config);
                ModuleSurgery.Replace(model, path, module, adapter);
                done.Add((path, module, adapter));
                layers[path] = adapter;
            }
        }
        catch
        {
            for (var i = done.Count - 1; i >= 0; i--)
                ModuleSurgery.Replace(model, done[i].Path, done[i].Adapter, done[i].Original);
            foreach (var adapter in byInstance.Values) adapter.Dispose();
            foreach (var (p, flag) in requiresGrad) p.requires_grad = flag;
            throw;
        }

        // PEFT's mark_only_lora_as_trainable with bias="none".
        var adapterParams = layers.Values.SelectMany(l => l.AdapterParameters().Select(p => p.Parameter.Handle)).ToHashSet();
        foreach (var p in model.parameters()) p.requires_grad = adapterParams.Contains(p.Handle);

        var report = new InjectionReport(
            layers.Select(kv => new AdaptedModule(kv.Key, kv.Value.BaseLayer.GetType().Name, kv.Value.Weight.shape,
                kv.Value.AdapterParameters().Sum(p => p.Parameter.numel()))).ToList(),
            excluded,
            matcher.UnmatchedEntries(candidates.Select(c => c.Path)));
        return new LoraModel(model, config, layers, report);
    }

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

    /// <summary>When false every adapter is bypassed and the model computes exactly its base output.</summary>
    public bool AdaptersEnabled
    {
        get => _layers.Values.All(l => l.AdapterEnabled);
        set { ThrowIfUnloaded(); foreach (var l in _layers.Values) l.AdapterEnabled = value; }
    }

    /// <summary>Disables the adapters until the returned object is disposed (PEFT's <c>with model.disable_adapter():</c>).</summary>
    public IDisposable DisableAdapters()
    {
        var previous = AdaptersEnabled;
        AdaptersEnabled = false;
        return new Restore(() => AdaptersEnabled = previous);
    }

    /// <summary>True while the adapters are folded into the base weights.</summary>
    public bool IsMerged => _layers.Values.Any(l => l.IsMerged);

    /// <summary>Selects PEFT's literal DoRA computation (for checking) instead of the default fast path.</summary>
    public bool UseReferenceDora
    {
        get => _layers.Values.Any(l => l.UseReferenceDora);
        set { foreach (var l in _layers.Values) l.UseReferenceDora = value; }
    }

    /// <summary>Folds every adapter into its base weight; the model then runs at base speed.</summary>
    public void Merge()
    {
        ThrowIfUnloaded();
        foreach (var l in _layers.Values.Distinct().Where(l => !l.IsMerged)) l.Merge();
    }

    /// <summary>Restores the base weights after <see cref="Merge"/>.</summary>
    public void Unmerge()
    {
        ThrowIfUnloaded();
        foreach (var l in _layers.Values.Distinct().Where(l => l.IsMerged)) l.Unmerge();
    }

    /// <summary>
    /// Merges the adapters and puts the plain base layers (now holding the merged weights) back into the
    /// model, which is returned; PEFT's <c>merge_and_unload</c>. This LoraModel is unusable afterwards.
    /// </summary>
    public nn.Module MergeAndUnload()
    {
        Merge();
        return Unload();
    }

    /// <summary>Puts the base layers back without merging (PEFT's <c>unload</c>); returns the model.</summary>
    public nn.Module Unload()
    {
        ThrowIfUnloaded();
        foreach (var (path, layer) in _layers)
        {
            var original = layer.Unload();
            ModuleSurgery.Replace(Model, path, layer, original);
        }
        foreach (var layer in _layers.Values.Distinct()) layer.Dispose();
        _unloaded = true;
        return Model;
    }

    /// <summary>Drops cached DoRA norms; needed only after writing into base weights in place by other means in eval mode.</summary>
    public void InvalidateCaches()
    {
        foreach (var l in _layers.Values) l.InvalidateCache();
    }

    #region Adapter files (PEFT format): forwarders to IO/AdapterFiles.cs

    /// <summary>
    /// Saves the adapters to <paramref name="directory"/> as PEFT does (<c>adapter_config.json</c> and
    /// <c>adapter_model.safetensors</c>), replacing it atomically; see <see cref="IO.AdapterFiles.Save(LoraModel, string, IO.AdapterSaveOptions?)"/>.
    /// </summary>
    public void SaveAdapter(string directory, IO.AdapterSaveOptions? options = null) => IO.AdapterFiles.Save(this, directory, options);

    /// <summary>
    /// Attaches the adapter saved in <paramref name="directory"/> (by DoraSharp or PEFT) to <paramref name="model"/>
    /// and loads its weights; PEFT's <c>PeftModel.from_pretrained</c>. See <see cref="IO.AdapterFiles.Load"/>.
    /// </summary>
    public static LoraModel LoadAdapter(nn.Module model, string directory, bool isTrainable = false)
        => IO.AdapterFiles.Load(model, directory, isTrainable);

    /// <summary>Loads an adapter's weights into these adapters; see <see cref="IO.AdapterFiles.LoadWeights"/>.</summary>
    public void LoadAdapterWeights(string directory) => IO.AdapterFiles.LoadWeights(this, directory);

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
