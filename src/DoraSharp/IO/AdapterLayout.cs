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
    /// What a file for <paramref name="plan"/> must hold: the plan's targets, of its config's rank, with or without a
    /// magnitude, and its modules to save. The plan is the one the load then injects, so the file is checked against
    /// exactly the modules that will carry it.
    /// </summary>
    public static AdapterLayout ForPlan(InjectionPlan plan)
    {
        var slots = plan.Targets.Select(t => AdapterSlot.ForBase(t.Path, t.Module)).ToList();
        var modules = plan.View.ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        var saved = plan.ModulesToSave.Select(p => SavedModuleSlot.For(p, modules[p])).ToList();
        return new AdapterLayout(slots, plan.Config.R, plan.Config.UseDora, modules, saved);
    }

    /// <summary>The layout of an existing adapter: its layers by path, its modules to save and the model's modules as it sees them.</summary>
    public static AdapterLayout ForAdapter(LoraConfig config, IReadOnlyDictionary<string, LoraLayer> layers, IReadOnlyList<string> modulesToSave,
        IReadOnlyList<(string Path, nn.Module Module)> view)
    {
        var slots = layers.Select(kv => AdapterSlot.ForAdapter(kv.Key, kv.Value)).ToList();
        var modules = view.ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        var saved = modulesToSave.Select(p => SavedModuleSlot.For(p, modules[p])).ToList();
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
