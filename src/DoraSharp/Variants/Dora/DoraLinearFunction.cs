using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The DoRA Linear fast path (docs/math.md eq. 10) as one autograd node with a hand-written backward:
/// <code>
/// y = (m/n)·(x·Wᵀ + s·(x·Aᵀ)·Bᵀ) + b        forward, n detached (paper §4.3)
/// gd = g·(m/n)                               the gradient through the scale, (N, out)
/// ∂m = Σ_N g·(x·Wᵀ + s·x·Aᵀ·Bᵀ) / n
/// ∂B = gdᵀ·(s·x·Aᵀ)      ∂(x·Aᵀ) = s·gd·B      ∂A = ∂(x·Aᵀ)ᵀ·x      ∂x = gd·W + ∂(x·Aᵀ)·A
/// </code>
/// The same numbers autograd derives from the composed ops, with fewer passes over (tokens, out): s·B·A·x
/// accumulates into the base GEMM's output (no separate LoRA output), s multiplies the (tokens, r) factor
/// instead of a (tokens, out) gradient, and ∂x sums its two terms inside one GEMM.
/// Not differentiable twice (create_graph): the backward runs on plain tensors. TorchSharp calls the backward
/// from native code, where an exception would end the process, so it only runs ops whose shapes were checked
/// by the forward.
/// </summary>
internal sealed class DoraLinearFunction : autograd.SingleTensorFunction<DoraLinearFunction>
{
    /// <inheritdoc/>
    public override string Name => nameof(DoraLinearFunction);

    /// <summary>
    /// y (N, out) for x (N, in), W (out, in) in x's dtype, A (r, in), B (out, r), m (out), bias (out) or null,
    /// the detached floored norm n (out) and s. Records a backward node when x, A, B or m requires grad.
    /// </summary>
    public static Tensor Apply(Tensor x, Tensor weight, Tensor loraA, Tensor loraB, Tensor magnitude, Tensor? bias, Tensor norm, double scaling)
        => apply(x, loraA, loraB, magnitude, weight, bias!, norm, scaling);

    /// <summary>The forward alone, for no-grad calls (inference): the same arithmetic without a graph node.</summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor loraA, Tensor loraB, Tensor magnitude, Tensor? bias, Tensor norm, double scaling)
    {
        using var scope = NewDisposeScope();
        var scale = magnitude.div(norm).to(x.dtype);
        var directed = Directed(x, weight, loraA, loraB, scaling, out _);
        return scope.MoveToOuter(Scale(directed, scale, bias));
    }

    // x·Wᵀ + s·(x·Aᵀ)·Bᵀ: the LoRA term accumulates into the base GEMM's output. sxA = s·x·Aᵀ (N, r).
    private static Tensor Directed(Tensor x, Tensor weight, Tensor loraA, Tensor loraB, double scaling, out Tensor sxA)
    {
        var xA = x.mm(loraA.t());                                                  // (N, r)
        sxA = scaling == 1 ? xA : xA.mul_(scaling);
        return x.mm(weight.t()).addmm_(sxA, loraB.t());                            // (N, out)
    }

    private static Tensor Scale(Tensor directed, Tensor scale, Tensor? bias)
        => bias is null ? directed.mul(scale) : torch.addcmul(bias, directed, scale, 1);

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (x, a, b, m) = ((Tensor)vars[0], (Tensor)vars[1], (Tensor)vars[2], (Tensor)vars[3]);
        var (w, bias, norm, scaling) = ((Tensor)vars[4], vars[5] as Tensor, (Tensor)vars[6], (double)vars[7]);
        var scale = m.div(norm);                                                   // (out)
        if (scale.dtype != x.dtype) scale = scale.to(x.dtype);
        var directed = Directed(x, w, a, b, scaling, out var sxA);                 // (N, out), (N, r)
        ctx.save_for_backward([x, a, b, w, sxA, directed, scale, norm]);
        ctx.save_data("scaling", scaling);
        ctx.save_data("grads", new[] { x.requires_grad, a.requires_grad, b.requires_grad, m.requires_grad });
        return Scale(directed, scale, bias);
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor g)
    {
        using var scope = NewDisposeScope();
        var saved = ctx.get_saved_variables();
        var (x, a, b, w, sxA, directed, scale, norm) = (saved[0], saved[1], saved[2], saved[3], saved[4], saved[5], saved[6], saved[7]);
        var scaling = (double)ctx.get_data("scaling");
        var needs = (bool[])ctx.get_data("grads");

        Tensor? gradM = null, gradA = null, gradB = null, gradX = null;
        if (needs[3])
        {
            using var product = g.mul(directed);                                      // (N, out), freed before gd exists
            // Σ over the N tokens as a GEMV with a ones vector, not product.sum(0): libtorch's reduction over the
            // leading axis of a row-major (N, out) tensor took 0.2–0.6 ms at 512 × 1024 here, the GEMV 0.02–0.05 ms
            // (measured alone; issue 15, docs/performance.md).
            using var ones = torch.ones(product.shape[0], dtype: product.dtype, device: product.device);  // (N)
            gradM = ones.matmul(product).to(norm.dtype).div_(norm);                    // (out)
        }
        var gd = g.mul(scale);                                                         // (N, out)
        if (needs[2]) gradB = sxA.t().mm(gd).t();                                      // (out, r): (r, out) is the faster GEMM layout
        if (needs[0] || needs[1])
        {
            var gxA = gd.mm(b);                                                        // (N, r)
            if (scaling != 1) gxA.mul_(scaling);
            if (needs[1]) gradA = gxA.t().mm(x);                                       // (r, in)
            if (needs[0]) gradX = gd.mm(w).addmm_(gxA, a);                             // (N, in)
        }
        var grads = new List<Tensor> { gradX!, gradA!, gradB!, gradM!, null!, null!, null!, null! };
        foreach (var t in grads) t?.MoveToOuterDisposeScope();
        return grads;
    }
}
