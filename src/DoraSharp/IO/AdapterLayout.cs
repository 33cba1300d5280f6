using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>One module that carries, or is about to carry, an adapter, with the sizes its tensors depend on.</summary>
/// <param name="Path">Dotted module path, e.g. "layers.0".</param>
/// <param name="Layer">The module instance; two paths holding one instance (weight tying) share one adapter.</param>
/// <param name="Type">The base layer's type, which decides PEFT's tensor names and shapes.</param>
/// <param name="InFeatures">PEFT's <c>in_features</c>: a Linear's inputs, an Embedding's num_embeddings, a Conv2d's input channels.</param>
/// <param name="OutFeatures">PEFT's <c>out_features</c>: a Linear's outputs, an Embedding's embedding_dim, a Conv2d's output channels.</param>
/// <param name="KernelSize">A Conv2d's (kh, kw); empty for the other types.</param>
internal sealed record AdapterSlot(string Path, object Layer, AdapterLayerType Type, long InFeatures, long OutFeatures, long[] KernelSize)
{
    /// <summary>The base layer's type name, for messages ("Linear").</summary>
    public string Kind => Type.ToString();

    /// <summary>
    /// The dtype of the adapter's tensors, which a load converts the file's values to: float64 for a float64 base,
    /// float32 otherwise (PEFT's autocast_adapter_dtype, <see cref="DoraMath.NormDType"/>).
    /// </summary>
    public ScalarType AdapterDType => Layer switch
    {
        LoraLayer layer => layer.LoraA.dtype,
        nn.Module module => DoraMath.NormDType((module.get_parameter("weight") ?? throw new InvalidOperationException($"Internal error: module '{Path}' has no weight.")).dtype),
        _ => throw new InvalidOperationException($"Internal error: slot '{Path}' holds a {Layer.GetType().Name}."),
    };

    /// <summary>The file key of <paramref name="kind"/> for this module.</summary>
    public string Key(AdapterTensorKind kind) => AdapterKeys.For(Path, Type, kind);

    /// <summary>The name of <paramref name="kind"/> after the module path, e.g. "lora_embedding_A".</summary>
    public string Name(AdapterTensorKind kind) => AdapterKeys.Name(Type, kind);

    /// <summary>
    /// The shape PEFT gives <paramref name="kind"/> for rank <paramref name="r"/>, as its <c>update_layer</c> and
    /// DoRA's <c>get_weight_norm</c> create them:
    /// Linear lora_A.weight (r, in), lora_B.weight (out, r), magnitude (out) — <c>nn.Linear(in, r)</c>, <c>nn.Linear(r, out)</c>;
    /// Embedding lora_embedding_A (r, num_embeddings), lora_embedding_B (embedding_dim, r), magnitude (embedding_dim);
    /// Conv2d lora_A.weight (r, in, kh, kw), lora_B.weight (out, r, 1, 1) — <c>Conv2d(in, r, kernel)</c>,
    /// <c>Conv2d(r, out, 1)</c> — and magnitude (1, out, 1, 1), the norm over (in, kh, kw) with keepdim, transposed.
    /// </summary>
    public long[] Shape(AdapterTensorKind kind, long r) => (Type, kind) switch
    {
        (AdapterLayerType.Conv2d, AdapterTensorKind.LoraA) => [r, InFeatures, KernelSize[0], KernelSize[1]],
        (AdapterLayerType.Conv2d, AdapterTensorKind.LoraB) => [OutFeatures, r, 1, 1],
        (AdapterLayerType.Conv2d, _) => [1, OutFeatures, 1, 1],
        (_, AdapterTensorKind.LoraA) => [r, InFeatures],
        (_, AdapterTensorKind.LoraB) => [OutFeatures, r],
        _ => [OutFeatures],
    };

    /// <summary>The sizes the shapes depend on, for messages: "(784 → 32)", "(1 → 4, kernel 3×3)", "(num_embeddings 20, embedding_dim 8)".</summary>
    public string Sizes => Type switch
    {
        AdapterLayerType.Embedding => $"(num_embeddings {InFeatures}, embedding_dim {OutFeatures})",
        AdapterLayerType.Conv2d => $"({InFeatures} → {OutFeatures}, kernel {KernelSize[0]}×{KernelSize[1]})",
        _ => $"({InFeatures} → {OutFeatures})",
    };

    /// <summary>The slot of a base layer an adapter can wrap, found without changing it.</summary>
    public static AdapterSlot ForBase(string path, nn.Module module) => module switch
    {
        Linear linear => new(path, linear, AdapterLayerType.Linear, linear.in_features, linear.out_features, []),
        Embedding embedding => EmbeddingSlot(path, embedding),
        Conv2d conv => new(path, conv, AdapterLayerType.Conv2d, conv.in_channels, conv.out_channels, [conv.kernel_size[0], conv.kernel_size[1]]),
        _ => throw new NotSupportedException($"Adapter files hold {LoraLayerFactory.SupportedTypes} adapters only; '{path}' is a {module.GetType().Name}."),
    };

    /// <summary>The slot of an existing adapter layer.</summary>
    public static AdapterSlot ForAdapter(string path, LoraLayer layer) => layer switch
    {
        LoraLinear linear => new(path, linear, AdapterLayerType.Linear, linear.InFeatures, linear.OutFeatures, []),
        LoraEmbedding embedding => new(path, embedding, AdapterLayerType.Embedding, embedding.NumEmbeddings, embedding.EmbeddingDim, []),
        LoraConv2d conv => new(path, conv, AdapterLayerType.Conv2d, conv.InChannels, conv.OutChannels, [conv.KernelSize[0], conv.KernelSize[1]]),
        _ => throw new NotSupportedException($"Adapter files hold {LoraLayerFactory.SupportedTypes} adapters only; '{path}' is a {layer.GetType().Name}."),
    };

    private static AdapterSlot EmbeddingSlot(string path, Embedding embedding)
    {
        // (num_embeddings, embedding_dim), as LoraEmbedding reads it; Wrap refuses a weight of another rank.
        long[] shape = (embedding.get_parameter("weight") ?? embedding.weight)?.shape ?? [0, 0];
        return new(path, embedding, AdapterLayerType.Embedding, shape.Length > 0 ? shape[0] : 0, shape.Length > 1 ? shape[1] : 0, []);
    }
}

/// <summary>
/// A module of <c>modules_to_save</c>: trained in full and saved whole, under PEFT's keys
/// <c>base_model.model.&lt;path&gt;.&lt;state-dict name&gt;</c> (its <c>ModulesToSaveWrapper.adapter_state_dict</c>).
/// </summary>
/// <param name="Path">Dotted module path, e.g. "classifier".</param>
/// <param name="Entries">The module's state-dict entries (parameters and persistent buffers) with their shapes and dtypes.</param>
internal sealed record SavedModuleSlot(string Path, IReadOnlyDictionary<string, (long[] Shape, ScalarType DType)> Entries)
{
    /// <summary>The file key of entry <paramref name="name"/>.</summary>
    public string Key(string name) => AdapterKeys.Prefix + Path + "." + name;

    /// <summary>The slot of <paramref name="module"/> at <paramref name="path"/>.</summary>
    public static SavedModuleSlot For(string path, nn.Module module) => new(path,
        module.state_dict().ToDictionary(kv => kv.Key, kv => (kv.Value.shape, kv.Value.dtype), StringComparer.Ordinal));
}

/// <summary>
/// What a model expects of an adapter file: which modules get an adapter, of which rank, with or without a DoRA
/// magnitude, and so which tensor keys and shapes. Computed without touching the model, so a load can check a file
/// completely before it changes anything.
/// </summary>
internal sealed class AdapterLayout
{
    private AdapterLayout(IReadOnlyList<AdapterSlot> slots, int r, bool useDora, IReadOnlyDictionary<string, nn.Module> modules,
        IReadOnlyList<SavedModuleSlot> savedModules)
    {
        Slots = slots;
        SavedModules = savedModules;
        R = r;
        UseDora = useDora;
        Modules = modules;
    }

    /// <summary>The modules that carry an adapter, in model order.</summary>
    public IReadOnlyList<AdapterSlot> Slots { get; }

    /// <summary>The modules of <c>modules_to_save</c>, in model order.</summary>
    public IReadOnlyList<SavedModuleSlot> SavedModules { get; }

    /// <summary>The rank of every adapter.</summary>
    public int R { get; }

    /// <summary>True when every adapter has a DoRA magnitude.</summary>
    public bool UseDora { get; }

    /// <summary>Every module of the model by path, to explain keys that name no adapted module.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules { get; }

    /// <summary>The tensor kinds each adapter has.</summary>
    public IEnumerable<AdapterTensorKind> Kinds => UseDora
        ? [AdapterTensorKind.LoraA, AdapterTensorKind.LoraB, AdapterTensorKind.Magnitude]
        : [AdapterTensorKind.LoraA, AdapterTensorKind.LoraB];

    /// <summary>
    /// The modules <see cref="LoraModel.Wrap"/> would adapt in <paramref name="model"/> for <paramref name="config"/>
    /// (same matcher, same rules), found without changing the model.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="config">The adapter's config.</param>
    /// <param name="configPath">The config file, for messages.</param>
    /// <param name="view">
    /// The model's modules as an added adapter sees them (<see cref="LoraModel.BaseView()"/>); null for a model without
    /// adapters, which is then checked to have none.
    /// </param>
    /// <exception cref="InvalidOperationException">The model already has adapters (and no view was given).</exception>
    /// <exception cref="AdapterMismatchException">The targets select no supported module of the model, or modules_to_save none.</exception>
    /// <param name="budget">The regex time budget of the whole load, shared with the Wrap that follows; null for a new one.</param>
    /// <exception cref="AdapterFormatException">The target regular expression runs too long on the module paths.</exception>
    public static AdapterLayout ForModel(nn.Module model, LoraConfig config, string configPath, List<(string Path, nn.Module Module)>? view = null,
        RegexBudget? budget = null)
    {
        var all = view ?? ModuleSurgery.Descendants(model);
        var wrapped = all.FirstOrDefault(m => m.Module is LoraLayer);
        if (view is null && (model is LoraLayer || wrapped.Module is not null))
        {
            throw new InvalidOperationException(
                $"The model already has an adapter{(wrapped.Module is null ? "" : $" at '{wrapped.Path}'")}. Load the weights into its " +
                "LoraModel with LoadAdapterWeights, add it beside with LoadAdapter(directory, name), or Unload() it first to load a different adapter.");
        }
        var matcher = new TargetMatcher(config, budget);
        List<string> toSave;
        try
        {
            toSave = LoraModel.FindModulesToSave(all, config, matcher);
        }
        catch (LoraConfigException e)
        {
            throw new AdapterMismatchException(configPath, $"field \"modules_to_save\" does not fit the model: {e.Message}", "modules_to_save", e);
        }
        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<string>();
        foreach ((string path, nn.Module module) in all)
        {
            bool targeted;
            try
            {
                targeted = matcher.MatchesTarget(path);
            }
            catch (RegexMatchTimeoutException e)
            {
                throw RegexTimeout(configPath, config, e, all.Count, matcher.Budget);
            }
            catch (LoraConfigException e)
            {
                // A module path the regex cannot be trusted on (a character beyond U+FFFF): the file's regex is refused.
                throw new AdapterFormatException(configPath, $"field \"target_modules\": {e.Message}", e);
            }
            if (!targeted) continue;
            bool isExcluded = matcher.IsExcluded(path) || toSave.Any(m => LoraModel.IsWithin(path, m));
            if (!LoraLayerFactory.IsSupported(module))
            {
                // Wrap's rule (LoraModel.UnsupportedListedLeaf), checked here so every load refuses it before anything changes.
                if (!isExcluded && LoraModel.UnsupportedListedLeaf(config, path, module) is { } refusal)
                    throw new AdapterMismatchException(configPath, $"field \"target_modules\" does not fit the model: {refusal.Message}", "target_modules", refusal);
                continue;
            }
            if (isExcluded) excluded.Add(path);
            else targets.Add((path, module));
        }
        if (targets.Count == 0)
        {
            var available = all.Where(m => LoraLayerFactory.IsSupported(m.Module)).Select(m => m.Path).ToList();
            string value = config.TargetModules is not null ? $"[{string.Join(", ", config.TargetModules.Take(20).Select(DisplayText.Quote))}]" : DisplayText.Quote(config.TargetModulesRegex!);
            throw new AdapterMismatchException(configPath,
                $"field \"target_modules\" ({value}) selects no {LoraLayerFactory.SupportedTypes} module of the model" +
                (excluded.Count > 0 ? $" that exclude_modules leaves (excluded: {string.Join(", ", excluded.Take(20))})" : "") +
                $": the adapter is for a different model. The model's {LoraLayerFactory.SupportedTypes} modules are: " +
                (available.Count == 0 ? "(none)" : string.Join(", ", available.Take(50)) + (available.Count > 50 ? $" … ({available.Count} in all)" : "")),
                key: "target_modules");
        }
        var slots = targets.Select(t => AdapterSlot.ForBase(t.Path, t.Module)).ToList();
        var modules = all.ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        var saved = toSave.Select(p => SavedModuleSlot.For(p, modules[p])).ToList();
        return new AdapterLayout(slots, config.R, config.UseDora, modules, saved);
    }

    /// <summary>The refusal of a <c>target_modules</c> regex that used up the load's time budget, naming the pattern and the limit.</summary>
    public static AdapterFormatException RegexTimeout(string configPath, LoraConfig config, RegexMatchTimeoutException e, int paths, RegexBudget budget) =>
        new(configPath, $"field \"target_modules\" ({DisplayText.Quote(config.TargetModulesRegex ?? "")}): {LoraModel.RegexTimeoutMessage(e, paths, budget)}", e);

    /// <summary>The adapter <paramref name="adapterName"/> of an existing <see cref="LoraModel"/>.</summary>
    public static AdapterLayout ForLoraModel(LoraModel lora, string adapterName)
    {
        var slots = lora.LayersOf(adapterName).Select(kv => AdapterSlot.ForAdapter(kv.Key, kv.Value)).ToList();
        var modules = lora.BaseView().ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        var saved = lora.ModulesToSaveOf(adapterName).Select(p => SavedModuleSlot.For(p, modules[p])).ToList();
        var config = lora.Configs[adapterName];
        return new AdapterLayout(slots, config.R, config.UseDora, modules, saved);
    }

    /// <summary>The shape PEFT gives <paramref name="kind"/> for <paramref name="slot"/> at this layout's r (<see cref="AdapterSlot.Shape"/>).</summary>
    public long[] ExpectedShape(AdapterSlot slot, AdapterTensorKind kind) => slot.Shape(kind, R);

    /// <summary>The axis of <paramref name="kind"/>'s shape that has length r, or -1; the same for every layer type.</summary>
    public static int RankAxis(AdapterTensorKind kind) => kind switch
    {
        AdapterTensorKind.LoraA => 0,
        AdapterTensorKind.LoraB => 1,
        _ => -1,
    };
}
