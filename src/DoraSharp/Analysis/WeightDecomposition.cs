using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Analysis;

/// <summary>
/// The DoRA paper's weight-decomposition analysis (Liu et al. 2024, §2.2, eqs. 3–4, Figure 2): how far a
/// fine-tuned weight moved in magnitude and in direction from the pretrained weight W0. Following PEFT's
/// convention, magnitude and direction are per output feature (one row of W):
/// <code>ΔM = mean over rows |m_t − m_0|        ΔD = mean over rows (1 − cos(W_t row, W0 row))</code>
/// with m_0 = ‖W0 row‖ and m_t the row norms of W_t (for DoRA, its magnitude vector: the rows of the
/// merged DoRA weight have exactly those norms).
/// </summary>
public static class WeightDecomposition
{
    /// <summary>ΔM and ΔD of <paramref name="current"/> (W_t) against <paramref name="pretrained"/> (W0), both (out, in).</summary>
    /// <param name="pretrained">W0, (out, in).</param>
    /// <param name="current">W_t, the effective weight at the checkpoint, (out, in).</param>
    /// <param name="magnitude">DoRA's magnitude vector m_t (out), or null to use the row norms of W_t.</param>
    public static MagnitudeDirectionChange Measure(Tensor pretrained, Tensor current, Tensor? magnitude = null)
    {
        if (!pretrained.shape.SequenceEqual(current.shape))
            throw new ArgumentException($"W0 has shape [{string.Join(", ", pretrained.shape)}] but W_t has [{string.Join(", ", current.shape)}].", nameof(current));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var w0 = pretrained.detach().to(ScalarType.Float64).flatten(1);      // (out, in): conv kernels flatten per output channel
        var wt = current.detach().to(ScalarType.Float64).flatten(1);
        var m0 = linalg.vector_norm(w0, 2, new long[] { 1 }, false);        // (out)
        var mt = magnitude is null
            ? linalg.vector_norm(wt, 2, new long[] { 1 }, false)
            : magnitude.detach().to(ScalarType.Float64).reshape(-1);
        if (mt.shape[0] != m0.shape[0])
            throw new ArgumentException($"magnitude has {mt.shape[0]} entries but the weight has {m0.shape[0]} rows.", nameof(magnitude));
        var deltaM = (mt - m0).abs().mean().item<double>();
        // cos = <W_t, W0> / (‖W_t‖‖W0‖) per row; a zero row has no direction: count it as unchanged.
        var dot = (wt * w0).sum(1);
        var denominator = linalg.vector_norm(wt, 2, new long[] { 1 }, false) * m0;
        var cos = torch.where(denominator > 0, dot / denominator.clamp_min(1e-300), torch.ones_like(dot));
        var deltaD = (1 - cos).mean().item<double>();
        return new MagnitudeDirectionChange(deltaM, deltaD);
    }
}

/// <summary>One weight's change against the pretrained weight: ΔM (magnitude) and ΔD (direction).</summary>
public readonly record struct MagnitudeDirectionChange(double DeltaMagnitude, double DeltaDirection);
