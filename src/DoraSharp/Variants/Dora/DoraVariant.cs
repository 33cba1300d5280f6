using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv 2402.09353) as a
/// <see cref="LoraVariant"/>: the adapted weight is W' = m · V / n with V = W + s·B·A, n = ‖V‖ per magnitude entry (the
/// row norm, detached: paper §4.3) and m a trained magnitude, PEFT's <c>lora_magnitude_vector</c>. This base owns what
/// every layer type shares — the magnitude, the one row-norm provider (<see cref="RowNorm(LoraLayer, RowNormMode)"/>: reference, factored,
/// cached), merge and unmerge; the per-type variants supply the norm's layout and the forward
/// (<see cref="DoraLinearVariant"/>, <see cref="DoraConv2dVariant"/>, <see cref="DoraEmbeddingVariant"/>, PEFT's
/// <c>DoraLinearVariant</c>, <c>DoraConv2dVariant</c>, <c>DoraEmbeddingVariant</c>).
/// </summary>
internal abstract class DoraVariant : LoraVariant
{
    /// <summary>State-dict name of the DoRA magnitude, as in PEFT's files.</summary>
    public const string MagnitudeName = "lora_magnitude_vector";

    private readonly EvalCache _normCache = new();

    /// <summary>The magnitude m of <paramref name="layer"/> (looked up each time: <c>.to()</c> replaces parameter objects).</summary>
    public static Parameter Magnitude(LoraLayer layer)
        => layer.get_parameter(MagnitudeName) ?? throw new InvalidOperationException($"Adapter '{layer.GetName()}' has no {MagnitudeName}.");

    /// <summary>The magnitude's shape in PEFT's files, e.g. (out) for a Linear, (1, out, 1, 1) for a Conv2d.</summary>
    protected abstract long[] MagnitudeShape(LoraLayer layer);

    /// <summary>The flat factor m / n (one value per magnitude entry) broadcast to W's layout, e.g. (out, 1).</summary>
    protected abstract Tensor WeightScaleView(Tensor scale);

    /// <summary>n the way PEFT's forward computes it (materialising B·A), flat, detached.</summary>
    protected abstract Tensor ReferenceRowNorm(LoraLayer layer);

    /// <summary>n without materialising B·A (<see cref="DoraRowNorm.Factored"/>), flat, detached.</summary>
    protected abstract Tensor FactoredRowNorm(LoraLayer layer);

    /// <summary>n = ‖W + ΔW‖ from a materialised ΔW in W's layout, flat, in float32 or wider; called under no_grad.</summary>
    protected abstract Tensor RowNorm(Tensor weight, Tensor delta);

    /// <summary>
    /// The mode the magnitude is initialised with (<see cref="Init"/>, <see cref="ResetMagnitude"/>): by default through
    /// the materialised ΔW, as PEFT's <c>update_layer</c>; a layer type whose factored norm avoids the (out, in)
    /// temporaries overrides it.
    /// </summary>
    protected virtual RowNormMode InitialRowNorm => RowNormMode.FromDelta;

    /// <summary>The row norm n of <paramref name="layer"/> (one value per magnitude entry, flat), computed in <paramref name="mode"/>.</summary>
    public Tensor RowNorm(LoraLayer layer, RowNormMode mode) => mode switch
    {
        RowNormMode.Reference => ReferenceRowNorm(layer),
        RowNormMode.Factored => FactoredRowNorm(layer),
        RowNormMode.Cached => CachedRowNorm(layer),
        RowNormMode.FromDelta => RowNorm(layer.Weight, layer.DeltaWeight()),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, "Expected Reference, Factored, Cached or FromDelta."),
    };

    /// <summary>
    /// The factored n, kept between eval-mode calls while W, A and B are unchanged (<see cref="EvalCache"/>). In training
    /// A and B change every step, so it is recomputed and nothing is kept.
    /// </summary>
    private Tensor CachedRowNorm(LoraLayer layer)
    {
        if (!layer.training) return _normCache.Get(layer.Weight, [layer.LoraA, layer.LoraB], () => FactoredRowNorm(layer));
        _normCache.Invalidate();
        return FactoredRowNorm(layer);
    }

    /// <summary>
    /// n for a forward pass: PEFT's literal computation when <see cref="LoraLayer.UseReferenceDora"/> is set, else the
    /// factored one, kept between eval-mode calls while W, A and B are unchanged.
    /// </summary>
    protected Tensor ForwardRowNorm(LoraLayer layer) => RowNorm(layer, layer.UseReferenceDora ? RowNormMode.Reference : RowNormMode.Cached);

    /// <summary>
    /// Creates the magnitude, initialised to the norm of W + s·B·A (PEFT's <c>DoraLinearLayer.update_layer</c>), so
    /// that at initialisation the DoRA layer equals the base layer.
    /// </summary>
    public override void Init(LoraLayer layer)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var norm = RowNorm(layer, InitialRowNorm).reshape(MagnitudeShape(layer));
        var magnitude = LoraLayer.NewParameter(norm.detach().clone().MoveToOuterDisposeScope(), requiresGrad: true);
        layer.RegisterVariantParameter(MagnitudeName, magnitude);
    }

    /// <summary>Sets m to ‖W + s·B·A‖ for the current W, A and B (DoRA's initialisation); called under no_grad.</summary>
    public void ResetMagnitude(LoraLayer layer)
    {
        var m = Magnitude(layer);
        m.copy_(RowNorm(layer, InitialRowNorm).reshape(m.shape));
    }

    /// <summary>m·(W + ΔW)/‖W + ΔW‖ in W's dtype, and the n it used, which <see cref="UnmergedWeight"/> divides by again (PEFT's merge_safe).</summary>
    public override (Tensor Merged, Tensor? UnmergeState) MergedWeight(LoraLayer layer, Tensor weight, Tensor delta)
    {
        var dtype = DoraMath.NormDType(weight.dtype);
        var v = weight.to(dtype).add(delta.to(dtype));
        var norm = RowNorm(weight, delta);
        var scale = DoraMath.MagnitudeScale(Magnitude(layer).detach().reshape(-1).to(dtype), norm);
        return (v.mul_(WeightScaleView(scale)).to(weight.dtype), norm);
    }

    /// <summary>W = merged·n/m − ΔW with the n recorded at merge time, as PEFT's unmerge (the current n would differ).</summary>
    /// <exception cref="InvalidOperationException">A row has magnitude 0: the merge erased its base weight.</exception>
    public override Tensor UnmergedWeight(LoraLayer layer, Tensor weight, Tensor delta, Tensor? unmergeState)
    {
        var mergedNorm = unmergeState ?? throw new InvalidOperationException($"Adapter '{layer.GetName()}' has no row norm recorded at merge time.");
        var dtype = DoraMath.NormDType(weight.dtype);
        var scale = DoraMath.MagnitudeScale(Magnitude(layer).reshape(-1).to(dtype), mergedNorm);
        var restored = weight.to(dtype).div(WeightScaleView(scale)).sub_(delta.to(dtype)).to(weight.dtype);
        // A row whose magnitude is 0 was merged to zeros: its base row cannot be recovered by division.
        if (!restored.isfinite().all().item<bool>())
            throw new InvalidOperationException(
                $"Cannot unmerge adapter '{layer.GetName()}': a row has magnitude 0, so the merge erased its base weight. Reload the base weights instead.");
        return restored;
    }

    /// <summary>Drops the cached eval-mode row norm.</summary>
    public override void InvalidateCache() => _normCache.Invalidate();
}
