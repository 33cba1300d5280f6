using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The DoRA arithmetic (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv 2402.09353)
/// as pure tensor functions. Notation: W the frozen base weight (out, in), V = W + s·B·A the adapted
/// direction, n = ‖V‖ per output row (the row norm, <see cref="DoraRowNorm"/>), m the trained magnitude (one value per output feature), and the
/// adapted weight W' = (m / n) · V (paper eq. 5). The DoRA variants (Variants/Dora) delegate here.
/// </summary>
public static class DoraMath
{
    /// <summary>
    /// Smallest row norm used as a divisor. PEFT divides by the raw norm and produces inf/NaN when a row of
    /// W + s·B·A is zero (PEFT issue 2049, e.g. zeroed rows of Llama-3.1's o_proj). We floor the divisor
    /// instead: a zero row has m = 0 from initialisation, so m / max(n, ε) = 0 and the row's output stays
    /// the base output, finite, with finite gradients. Rows with n ≥ ε (every real row) are untouched.
    /// </summary>
    public const double NormFloor = 1e-12;

    /// <summary>
    /// The dtype the norm and the magnitude are kept in: float32 or wider. A bfloat16 magnitude silently
    /// stops learning (Adam's small updates round away at 8 bits of mantissa), so narrower bases are upcast.
    /// </summary>
    public static ScalarType NormDType(ScalarType weightDType)
        => weightDType == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32;

    /// <summary>
    /// The factor m / n applied to each output row, with the divisor floored at <see cref="NormFloor"/>.
    /// </summary>
    public static Tensor MagnitudeScale(Tensor magnitude, Tensor rowNorm)
        => magnitude.div(FlooredNorm(rowNorm));

    /// <summary>The divisor of m / n: the norm floored at <see cref="NormFloor"/>.</summary>
    public static Tensor FlooredNorm(Tensor rowNorm) => rowNorm.clamp_min(NormFloor);

    /// <summary>
    /// PEFT's DoRA output correction, added to the base output: (m/n − 1)·baseNoBias + (m/n)·s·loraOut,
    /// where baseNoBias is W·x (no bias) and loraOut is B(A(x)). The m/n factor broadcasts over the last
    /// (feature) dimension.
    /// </summary>
    public static Tensor OutputCorrection(Tensor scale, Tensor baseNoBias, Tensor loraOut, double scaling)
    {
        using var scope = NewDisposeScope();
        var correction = scale.sub(1).mul(baseNoBias).add_(scale.mul(loraOut).mul_(scaling));
        return scope.MoveToOuter(correction);
    }
}
