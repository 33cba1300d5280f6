using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// DoRA's row norm n — one name for one quantity: n_i = ‖V_i‖ with V = W + s·B·A, one value per magnitude entry
/// (a Linear's output row, a Conv2d's output channel over (in, kh, kw), an Embedding's dimension over the vocabulary).
/// The paper (Liu et al. 2024, arXiv 2402.09353, §4.3) treats n as a constant in backprop, so every function here
/// runs under no_grad or is called under it. Three ways to compute it, equal up to float rounding:
/// <list type="bullet">
/// <item><see cref="Reference"/> and <see cref="Of"/>: materialise V, as PEFT's <c>get_weight_norm</c> does;</item>
/// <item><see cref="Factored"/>: without materialising B·A,
/// <code>n_i² = ‖W_i‖² + 2s·(W·Aᵀ)_i·B_i + s²·B_i·(A·Aᵀ)·B_iᵀ</code>
/// one pass over W (its row norms and W·Aᵀ) and O((out + in)·r²) more, instead of PEFT's B·A (out×in temporary),
/// W + s·B·A (another) and a norm over it (a large-temporary path that is allocation-bound on CPU);</item>
/// <item><see cref="Direct"/>: V summed directly from the factors, for small layers (see <see cref="Fast"/>).</item>
/// </list>
/// </summary>
public static class DoraRowNorm
{
    /// <summary>
    /// A row whose three terms sum to more than this many times its n² is recomputed directly: the
    /// factored sum cancels there (an update that nearly cancels W_i), and its relative error grows like
    /// eps·(‖W_i‖² + …)/n_i². With 16 the float32 error stays near 1e-6 relative; bad rows are
    /// recomputed in float64.
    /// </summary>
    public const double CancellationRatio = 16;

    /// <summary>
    /// Layers with at most this many weights (out·in) take <see cref="Direct"/>: there the factored form's
    /// ~20 small ops cost more in dispatch (~5–20 µs each) than two passes over an out×in temporary (≤ 128 KB in
    /// float32); e.g. the demo MLP's 784→32, 32→64 and 64→10 layers. Larger layers keep the factored form (no
    /// out×in temporary).
    /// </summary>
    public const long DirectMaxElements = 32768;

    /// <summary>
    /// The row norms of W + s·B·A a DoRA Linear's fast path uses: <see cref="Direct"/> for layers of at most
    /// <see cref="DirectMaxElements"/> weights, else <see cref="Factored"/>. Both are the norm up to float rounding.
    /// </summary>
    public static Tensor Fast(Tensor weight, Tensor loraA, Tensor loraB, double scaling)
        => weight.shape[0] * weight.shape[1] <= DirectMaxElements
            ? Direct(weight, loraA, loraB, scaling)
            : Factored(weight, loraA, loraB, scaling);

    /// <summary>
    /// n_i = ‖V_i‖ over every axis of <paramref name="direction"/> V but the first: (out, in) → (out) for a Linear,
    /// (out, in, kh, kw) → (out) for a Conv2d. V as given (callers form it in <see cref="DoraMath.NormDType"/>).
    /// </summary>
    public static Tensor Of(Tensor direction)
        => linalg.vector_norm(direction, ord: 2, dims: Enumerable.Range(1, (int)direction.dim() - 1).Select(d => (long)d).ToArray());

    /// <summary>
    /// Row-wise L2 norm of V = W + s·(B·A), computed the straightforward way (materialising V in
    /// <see cref="DoraMath.NormDType"/>), as PEFT's <c>DoraLinearLayer.get_weight_norm</c> does. Shape (out).
    /// Not differentiated: callers run it under no_grad (paper §4.3).
    /// </summary>
    /// <param name="weight">W, (out, in).</param>
    /// <param name="lowRankProduct">B·A unscaled (or ΔW with <paramref name="scaling"/> = 1), (out, in).</param>
    /// <param name="scaling">s.</param>
    public static Tensor Reference(Tensor weight, Tensor lowRankProduct, double scaling)
    {
        var dtype = DoraMath.NormDType(weight.dtype);
        using var scope = NewDisposeScope();
        var v = weight.to(dtype).add(lowRankProduct.to(dtype), alpha: scaling); // (out, in)
        return scope.MoveToOuter(linalg.vector_norm(v, ord: 2, dims: new long[] { 1 }));
    }

    /// <summary>W, A and B in <see cref="DoraMath.NormDType"/>: converted only when the dtype differs (no needless native call).</summary>
    private static (Tensor W, Tensor A, Tensor B) InNormDType(Tensor weight, Tensor loraA, Tensor loraB)
    {
        var dtype = DoraMath.NormDType(weight.dtype);
        Tensor In(Tensor t) => t.dtype == dtype ? t : t.to(dtype);
        return (In(weight), In(loraA), In(loraB));
    }

    /// <summary>
    /// ‖W_i + s·(B·A)_i‖ summed directly, as PEFT does (in <see cref="DoraMath.NormDType"/>), for small layers: V formed
    /// by <see cref="LoraMath.AddScaledProduct"/> as the small-layer training forward forms it, then its row norms (two
    /// native calls). At B = 0 it is exactly PEFT's ‖W_i‖ (W + 0 is W), so m = n at initialisation on both DoRA paths. Where an update nearly cancels W_i its float32 error is PEFT's own, eps·‖W_i‖/n_i (the factored
    /// form recomputes such rows in float64; at these sizes the whole norm costs less than that check).
    /// </summary>
    public static Tensor Direct(Tensor weight, Tensor loraA, Tensor loraB, double scaling)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (w, a, b) = InNormDType(weight, loraA, loraB);
        var direct = LoraMath.AddScaledProduct(w, a, b, scaling);                          // (out, in)
        return scope.MoveToOuter(linalg.vector_norm(direct, ord: 2, dims: new long[] { 1 })); // (out)
    }

    /// <summary>
    /// The factored row norms of W + s·B·A (docs/math.md eq. 11): W (out, in), A (r, in), B (out, r) → (out). A Conv2d
    /// passes W flattened to (out, in·kh·kw), an Embedding Wᵀ; rows that cancel are recomputed directly
    /// (<see cref="CancellationRatio"/>).
    /// </summary>
    public static Tensor Factored(Tensor weight, Tensor loraA, Tensor loraB, double scaling)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        // A dozen small ops per call: each costs a native dispatch, which weighs at 1024² (no detach needed under
        // no_grad, conversions only when the dtype differs, in-place where a temporary is not reused).
        var (w, a, b) = InNormDType(weight, loraA, loraB);
        var aT = a.t();                                                        // (in, r)

        var wSq = linalg.vector_norm(w, ord: 2, dims: new long[] { 1 }).pow_(2); // (out)  ‖W_i‖²
        var cross = w.mm(aT).mul_(b).sum(1);                                   // (out)  (W·Aᵀ)_i·B_i
        var quad = b.mm(a.mm(aT)).mul_(b).sum(1);                              // (out)  B_i·(A·Aᵀ)·B_iᵀ
        var nSq = wSq.add_(cross, alpha: 2 * scaling).add_(quad, alpha: scaling * scaling);

        // Cancellation guard: the terms' magnitudes ‖W_i‖² + 2|s·cross| + s²·quad exceed CancellationRatio·n²
        // exactly when 4·max(−s·cross, 0) > (CancellationRatio − 1)·n² (quad ≥ 0: A·Aᵀ is a Gram matrix);
        // recompute the few bad rows the direct way.
        var bad = cross.mul_(-4 * scaling).clamp_min_(0).gt(nSq.mul(CancellationRatio - 1));
        var norm = nSq.clamp_min_(0).sqrt_();
        if (bad.any().item<bool>())
        {
            // In float64: when the update nearly cancels W_i, even the direct sum W_i + s·(B·A)_i loses
            // digits in float32 (error ~ eps·‖W_i‖/n_i), so these few rows are summed in double precision.
            var rows = bad.nonzero().squeeze(1);                              // (k)
            var a64 = a.to(ScalarType.Float64);
            var direct = w.index_select(0, rows).to(ScalarType.Float64)
                .add_(b.index_select(0, rows).to(ScalarType.Float64).matmul(a64), alpha: scaling);  // (k, in)
            norm.index_copy_(0, rows, linalg.vector_norm(direct, ord: 2, dims: new long[] { 1 }).to(norm.dtype));
        }
        return scope.MoveToOuter(norm);
    }
}
