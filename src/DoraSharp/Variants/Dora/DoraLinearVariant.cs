using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp;

/// <summary>
/// DoRA for a <see cref="LoraLinear"/>, computing what PEFT's <c>DoraLinearVariant</c> computes: magnitude (out),
/// n = ‖W + s·B·A‖ per output row. Four forward paths, the same function up to float rounding:
/// PEFT's literal one (<see cref="LoraLayer.UseReferenceDora"/>, and always with dropout), the fused autograd node
/// <see cref="DoraLinearFunction"/> (docs/math.md eq. 10), and for small layers a direct one in training
/// (<see cref="SmallLayerTrainingForward"/>) and a kept adapted weight at inference (<see cref="AdaptedWeightOf"/>).
/// </summary>
internal sealed class DoraLinearVariant : DoraVariant
{
    // Small layers at inference: W' = (m/n)·(W + s·B·A) kept while W, A, B and m are unchanged, so an eval call is one
    // linear plus three byte comparisons instead of the norm check and the fused node's eight native calls. On layers
    // this small per-call dispatch, not arithmetic, is the cost (issue 15, item 4), and W' is at most 128 KB in
    // float32; larger layers keep only the norm, where W' would be a second copy of the weight.
    private readonly EvalCache _adaptedWeight = new();

    /// <summary>False sends small layers through the fused node as well (tests check both against PEFT).</summary>
    internal bool SmallLayerPathEnabled { get; set; } = true;

    /// <summary>The small-layer eval-mode cache of W' (for tests).</summary>
    internal EvalCache AdaptedWeight => _adaptedWeight;

    /// <inheritdoc/>
    public override void InvalidateCache()
    {
        base.InvalidateCache();
        _adaptedWeight.Invalidate();
    }

    /// <inheritdoc/>
    protected override long[] MagnitudeShape(LoraLayer layer) => new[] { ((LoraLinear)layer).OutFeatures };

    /// <inheritdoc/>
    protected override Tensor WeightScaleView(Tensor scale) => scale.unsqueeze(1); // (out, 1)

    /// <summary>n = ‖W + s·B·A‖ per row, the PEFT way (materialising B·A), detached.</summary>
    protected override Tensor ReferenceRowNorm(LoraLayer layer)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var product = LoraMath.LowRankProduct(layer.LoraA, layer.LoraB);
        return scope.MoveToOuter(DoraRowNorm.Reference(layer.Weight, product, layer.Scaling));
    }

    /// <summary>The factored norm, or for small layers the direct sum (<see cref="DoraRowNorm.Fast"/>).</summary>
    protected override Tensor FactoredRowNorm(LoraLayer layer) => DoraRowNorm.Fast(layer.Weight, layer.LoraA, layer.LoraB, layer.Scaling);

    /// <inheritdoc/>
    protected override Tensor RowNorm(Tensor weight, Tensor delta) => DoraRowNorm.Reference(weight, delta, 1.0);

    /// <summary>
    /// The factored norm (docs/math.md eq. 11): no (out, in) temporary at construction, where PEFT's way makes two
    /// (B·A and W + s·B·A), and m equals the forward's n exactly at initialisation.
    /// </summary>
    protected override RowNormMode InitialRowNorm => RowNormMode.Factored;

    /// <inheritdoc/>
    public override Tensor Forward(LoraLayer layer, Tensor x)
    {
        var linear = (LoraLinear)layer;
        var weight = layer.Weight;
        var bias = layer.Bias;
        using var scope = NewDisposeScope();
        var xa = layer.AdapterInput(x);
        var dropped = layer.DropoutActive;
        var xd = !dropped ? xa : layer.ApplyDropout(xa);
        var m = Magnitude(layer);

        if (layer.training) _adaptedWeight.Invalidate();                                   // kept for eval mode only
        var smallLayerPath = !layer.UseReferenceDora && !dropped && IsSmallLayer(linear) && SmallLayerPathEnabled
            && x.dtype == weight.dtype && layer.LoraA.dtype == weight.dtype && m.dtype == weight.dtype;
        if (smallLayerPath && layer.training && is_grad_enabled())
            return scope.MoveToOuter(SmallLayerTrainingForward(layer, x, weight, bias, m));
        if (smallLayerPath && !layer.training && !(is_grad_enabled() && (layer.LoraA.requires_grad || layer.LoraB.requires_grad || m.requires_grad)))
        {
            // Inference: one linear with the kept W' = (m/n)·V (detached: used only where no gradient must reach A, B
            // or m; the gradient to x still flows).
            var adapted = _adaptedWeight.Get(weight, [layer.LoraA, layer.LoraB, m], () => AdaptedWeightOf(layer, weight, m));
            return scope.MoveToOuter(F.linear(x, adapted, bias));
        }

        var norm = ForwardRowNorm(layer);                                                  // (out), detached
        if (layer.UseReferenceDora || dropped)
        {
            // PEFT's DoraLinearVariant.forward, term for term. With dropout PEFT keeps the full input in
            // base(x) and applies the magnitude correction to the dropped input x~, so W·x~ is computed too.
            var loraOut = linear.LoraOutput(xd);                                           // (..., out)
            var scale = DoraMath.MagnitudeScale(m, norm).to(loraOut.dtype);                // (out)
            var result = F.linear(x, weight, bias);                                        // (..., out)
            var baseNoBias = dropped
                ? F.linear(xd, weight.to(xd.dtype))
                : (bias is null ? result : result.sub(bias)).to(loraOut.dtype);
            return scope.MoveToOuter(LoraLayer.Cast(result.add(DoraMath.OutputCorrection(scale, baseNoBias, loraOut, layer.Scaling)), x.dtype));
        }
        // Without dropout PEFT's base(x) + (m/n − 1)·W·x + (m/n)·s·B·A·x equals (m/n)·(W·x + s·B·A·x) + bias:
        // one fused autograd node (DoraLinearFunction) computes it with a hand-written backward.
        var x2 = xa.reshape(-1, linear.InFeatures);                                        // (N, in)
        // Conversions only where the dtype differs: each .to() is a native call even when it changes nothing.
        var w = LoraLayer.Cast(weight, xa.dtype);
        var b = bias is null ? null : LoraLayer.Cast(bias, xa.dtype);
        var floored = DoraMath.FlooredNorm(norm);
        var (loraA, loraB) = (layer.LoraA, layer.LoraB);
        var output = is_grad_enabled() && (x2.requires_grad || loraA.requires_grad || loraB.requires_grad || m.requires_grad)
            ? DoraLinearFunction.Apply(x2, w, loraA, loraB, m, b, floored, layer.Scaling)
            : DoraLinearFunction.Forward(x2, w, loraA, loraB, m, b, floored, layer.Scaling);   // (N, out)
        return scope.MoveToOuter(LoraLayer.Cast(output.reshape(OutputShape(x, linear.OutFeatures)), x.dtype));
    }

    /// <summary>Layers whose W + s·B·A is cheaper to form than the factored norm's small ops (<see cref="DoraRowNorm.DirectMaxElements"/>).</summary>
    private static bool IsSmallLayer(LoraLinear layer) => layer.InFeatures * layer.OutFeatures <= DoraRowNorm.DirectMaxElements;

    /// <summary>
    /// DoRA's training forward for small layers, where per-op dispatch, not arithmetic, is the cost (the demo MLP):
    /// V = W + s·B·A is formed once (differentiable in A and B), its row norm n is read from it detached (paper
    /// §4.3), and y = x·((m/n)⊙V)ᵀ + b — seven native calls with libtorch's own backward, instead of the factored
    /// norm and the hand-written node's managed backward. The same function as the fused path up to float rounding;
    /// n is <see cref="DoraRowNorm.Direct"/>'s (the one the magnitude is initialised with), so the output at
    /// initialisation is still the base layer's exactly.
    /// </summary>
    private static Tensor SmallLayerTrainingForward(LoraLayer layer, Tensor x, Tensor weight, Tensor? bias, Tensor magnitude)
    {
        var v = LoraMath.AddScaledProduct(weight, layer.LoraA, layer.LoraB, layer.Scaling); // (out, in)
        Tensor norm;
        using (no_grad()) norm = DoraMath.FlooredNorm(linalg.vector_norm(v, ord: 2, dims: new long[] { 1 })); // (out)
        return F.linear(x, v.mul(magnitude.div(norm).unsqueeze(1)), bias);                  // (..., out)
    }

    /// <summary>
    /// W' = (m/n)·V with V = W + s·B·A and n = ‖V‖ per row (floored), detached: the weight the small-layer training
    /// forward multiplies by, which small layers keep at inference.
    /// </summary>
    private static Tensor AdaptedWeightOf(LoraLayer layer, Tensor weight, Tensor magnitude)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var v = LoraMath.AddScaledProduct(weight, layer.LoraA, layer.LoraB, layer.Scaling);   // (out, in)
        var norm = DoraMath.FlooredNorm(linalg.vector_norm(v, ord: 2, dims: new long[] { 1 })); // (out)
        return scope.MoveToOuter(v.mul_(magnitude.div(norm).unsqueeze(1)));
    }

    private static long[] OutputShape(Tensor x, long outFeatures)
    {
        var shape = x.shape.ToArray();
        shape[^1] = outFeatures;
        return shape;
    }
}
