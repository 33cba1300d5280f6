using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// A LoRA or DoRA adapter around an <see cref="Embedding"/> layer, computing what PEFT's
/// <c>lora.Embedding</c> (with <see cref="DoraEmbeddingVariant"/>, PEFT's <c>DoraEmbeddingVariant</c>, when
/// <see cref="LoraConfig.UseDora"/>) computes:
/// <code>
/// LoRA: y = W[x] + s · (Aᵀ[x] @ Bᵀ)
/// DoRA: y = (m/n) · W[x] + (m/n) · s · (Aᵀ[x] @ Bᵀ),   n_j = ‖column j of W + s·(B·A)ᵀ‖ over the vocabulary
/// </code>
/// with W (num_embeddings, embedding_dim), A = <c>lora_embedding_A</c> (r, num_embeddings),
/// B = <c>lora_embedding_B</c> (embedding_dim, r) and one magnitude per embedding dimension.
/// State-dict keys: <c>weight</c> (the base layer's, frozen), <c>lora_embedding_A</c>,
/// <c>lora_embedding_B</c> and, for DoRA, <c>lora_magnitude_vector</c> (embedding_dim) — PEFT's names in
/// its adapter files (PEFT keeps A and B in a ParameterDict, so they carry no <c>.weight</c> suffix).
/// <para>As in PEFT, <see cref="LoraConfig.LoraDropout"/> is not applied: PEFT's <c>Embedding.forward</c>
/// never calls its dropout module. The default init is A = 0 and B standard normal (the reverse of Linear)
/// for every <see cref="LoraInit"/>. The base layer's <c>padding_idx</c> applies to the LoRA lookup as in
/// PEFT's <c>_embed</c> (no gradient from that index); a base with <c>max_norm</c> or
/// <c>scale_grad_by_freq</c> is refused, and gradients are dense even for a <c>sparse</c> base.</para>
/// </summary>
public sealed class LoraEmbedding : LoraLayer
{
    private readonly Parameter lora_embedding_A;
    private readonly Parameter lora_embedding_B;

    /// <summary>Wraps <paramref name="baseLayer"/>; its weight is shared (not copied) and frozen.</summary>
    /// <exception cref="AdapterInjectionException">The embedding uses <c>max_norm</c> or <c>scale_grad_by_freq</c>.</exception>
    public LoraEmbedding(Embedding baseLayer, LoraConfig config)
        : this(baseLayer, config, SupportedOptions(baseLayer))
    {
    }

    private LoraEmbedding(Embedding baseLayer, LoraConfig config, EmbeddingOptions options)
        : base(nameof(LoraEmbedding), baseLayer, BaseWeight(baseLayer), null, config)
    {
        Options = options;
        var w = Weight;
        NumEmbeddings = w.shape[0];
        EmbeddingDim = w.shape[1];
        // PEFT's autocast_adapter_dtype: adapters of a float16/bfloat16 base train in float32.
        var adapterType = DoraMath.NormDType(w.dtype);
        lora_embedding_A = NewParameter(empty(config.R, NumEmbeddings, dtype: adapterType, device: w.device), requiresGrad: true);
        lora_embedding_B = NewParameter(empty(EmbeddingDim, config.R, dtype: adapterType, device: w.device), requiresGrad: true);
        LoraInitializer.InitEmbeddingFactors(lora_embedding_A, lora_embedding_B);
        register_parameter("lora_embedding_A", lora_embedding_A);
        register_parameter("lora_embedding_B", lora_embedding_B);
        InitVariant();
    }

    /// <summary>Vocabulary size of the base layer.</summary>
    public long NumEmbeddings { get; }

    /// <summary>Embedding dimension of the base layer (the DoRA magnitude has one entry per dimension).</summary>
    public long EmbeddingDim { get; }

    /// <summary>The base layer's lookup options that the LoRA lookup shares.</summary>
    internal EmbeddingOptions Options { get; }

    /// <summary>PEFT's <c>lora_embedding_A</c>, (r, num_embeddings).</summary>
    public override Parameter LoraA => get_parameter("lora_embedding_A")!;

    /// <summary>PEFT's <c>lora_embedding_B</c>, (embedding_dim, r).</summary>
    public override Parameter LoraB => get_parameter("lora_embedding_B")!;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var weight = Weight;
        if (!AdapterEnabled || IsMerged) return Lookup(weight, x);
        if (Variant is not null) return Variant.Forward(this, x);

        using var scope = NewDisposeScope();
        var result = Lookup(weight, x);                                  // (..., dim)  base(x)
        var loraOut = LoraOutput(x);                                     // (..., dim)
        var output = result.add(loraOut.mul(Scaling));
        return scope.MoveToOuter(output.dtype == result.dtype ? output : output.to(result.dtype));
    }

    /// <summary>W[x], the base output.</summary>
    internal Tensor BaseLookup(Tensor x) => Lookup(Weight, x);

    /// <summary>Aᵀ[x] @ Bᵀ: the unscaled LoRA output, (..., r) @ (r, dim) → (..., dim).</summary>
    internal Tensor LoraOutput(Tensor x)
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(LoraLookup(x).matmul(LoraB.t()));
    }

    /// <summary>W[x]: the base lookup (the base weight is frozen, so no gradient options apply).</summary>
    private static Tensor Lookup(Tensor weight, Tensor x)
    {
        using var scope = NewDisposeScope();
        var rows = weight.index_select(0, x.reshape(-1));               // (N, dim)
        return scope.MoveToOuter(rows.reshape(x.shape.Append(weight.shape[1]).ToArray()));
    }

    /// <summary>
    /// Aᵀ[x], PEFT's <c>_embed(x, lora_embedding_A.T)</c>: an embedding lookup into the (num, r) matrix Aᵀ
    /// with the base layer's padding_idx, whose positions contribute no gradient (F.embedding's rule).
    /// </summary>
    private Tensor LoraLookup(Tensor x)
    {
        using var scope = NewDisposeScope();
        var flat = x.reshape(-1);                                        // (N)
        var rows = LoraA.t().index_select(0, flat);                      // (N, r)
        if (Options.PaddingIdx is { } pad)
            rows = where(flat.eq(pad).unsqueeze(1), rows.detach(), rows);
        return scope.MoveToOuter(rows.reshape(x.shape.Append(LoraA.shape[0]).ToArray()));
    }

    /// <summary>
    /// PEFT's <c>Embedding.get_delta_weight</c>: ΔW = s·(B·A)ᵀ, shape (num_embeddings, embedding_dim),
    /// returned contiguous (in W's layout) so that W + ΔW has W's memory layout.
    /// </summary>
    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var delta = LoraB.matmul(LoraA).t().mul(Scaling).contiguous();    // (num, dim)
        return scope.MoveToOuter(delta.to(Weight.dtype));
    }

    /// <inheritdoc/>
    public override nn.Module<Tensor, Tensor> Unload()
    {
        var embedding = (Embedding)BaseLayer;
        // Hand over the weight only if .to() replaced it while the base layer was out of the model.
        RebindParameter(embedding, "weight", Weight);
        return embedding;
    }

    private static Parameter BaseWeight(Embedding embedding)
        => embedding.get_parameter("weight") ?? embedding.weight ?? throw new ArgumentException("The Embedding has no weight.", nameof(embedding));

    private static EmbeddingOptions SupportedOptions(Embedding embedding)
    {
        ArgumentNullException.ThrowIfNull(embedding);
        var weight = BaseWeight(embedding);
        if (weight.dim() != 2)
            throw new AdapterInjectionException($"The Embedding's weight has shape [{string.Join(", ", weight.shape)}]; expected (num_embeddings, embedding_dim).");
        var options = EmbeddingOptions.Detect(embedding, weight.shape[0]);
        if (options.MaxNorm is { } maxNorm)
            throw new AdapterInjectionException(
                $"Cannot adapt an Embedding with max_norm = {maxNorm:G6}: PEFT's LoRA lookup passes max_norm on to F.embedding, " +
                "which then rescales columns of lora_embedding_A in place on every forward pass. Not supported; create the Embedding without max_norm.");
        if (options.ScaleGradByFreq)
            throw new AdapterInjectionException(
                "Cannot adapt an Embedding with scale_grad_by_freq = true: its per-batch gradient scaling of lora_embedding_A is not supported.");
        return options;
    }
}
