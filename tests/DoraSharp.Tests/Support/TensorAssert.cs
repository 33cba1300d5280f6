using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// Tensor comparisons. The rule for choosing one (issue 13: the suite must pass on Intel and AMD CPUs alike):
/// <list type="bullet">
/// <item><see cref="Equal"/> (bit for bit) only where no rounding can differ: (a) nothing is computed — copies,
/// file round-trips, gathers (embedding lookups), products with exactly 1 and sums with exactly 0; or (b) the very
/// same operations run twice on the same inputs in the same process state. "Same process state" means libtorch's
/// kernels were not switched in between: the oneDNN switch and the thread count are process-wide, so tests that
/// change them run alone (<see cref="ProcessWideState"/>).</item>
/// <item><see cref="WithinUlps"/> where two different sequences of kernels compute the same value in exact
/// arithmetic (e.g. x·Wᵀ then addcmul(bias, ·, m/n) vs addmm(bias, x, Wᵀ)): CPUs of another family run other
/// GEMM kernels that round in another order. The bound is a few units of the dtype's epsilon times the magnitude
/// of the terms summed, the scale at which those roundings happen (Higham, Accuracy and Stability of Numerical
/// Algorithms, §3.1) — not a loose absolute tolerance.</item>
/// <item><see cref="Close"/> for comparisons with other implementations (PEFT's golden values, ONNX Runtime).</item>
/// </list>
/// </summary>
internal static class TensorAssert
{
    /// <summary>Element-wise closeness with the golden README's rule |actual − expected| ≤ atol + rtol·|expected|.</summary>
    public static void Close(Tensor expected, Tensor actual, double rtol, double atol, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape),
            $"{what}: shape [{string.Join(",", actual.shape)}], expected [{string.Join(",", expected.shape)}]");
        using var scope = NewDisposeScope();
        var e = expected.to(ScalarType.Float64);
        var a = actual.detach().to(ScalarType.Float64);
        var diff = (a - e).abs();
        var allowed = e.abs() * rtol + atol;
        var excess = (diff - allowed).max().item<double>();
        var maxDiff = diff.max().item<double>();
        Assert.True(a.isfinite().all().item<bool>(), $"{what}: has NaN or Inf");
        Assert.True(excess <= 0, $"{what}: max |diff| {maxDiff:E3} exceeds atol {atol:E3} + rtol {rtol:E1}·|expected| (by {excess:E3})");
    }

    /// <summary>Bit-identical: same shape, dtype and values (see the rule above for when this may be asserted).</summary>
    public static void Equal(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shapes differ");
        Assert.True(expected.dtype == actual.dtype, $"{what}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.allclose(actual, rtol: 0, atol: 0), $"{what}: not bit-identical (max |diff| {(expected.to(ScalarType.Float64) - actual.to(ScalarType.Float64)).abs().max().item<double>():E3})");
    }

    /// <summary>
    /// |actual − expected| ≤ <paramref name="ulps"/>·eps(dtype)·<paramref name="scale"/> element-wise, where
    /// <paramref name="scale"/> is the magnitude of the terms whose sum is compared (e.g. |x|·|W|ᵀ + |b| for a
    /// linear layer, see <see cref="LinearTermScale"/>). Same shape and dtype are required.
    /// </summary>
    public static void WithinUlps(Tensor expected, Tensor actual, Tensor scale, double ulps, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shapes differ");
        Assert.True(expected.dtype == actual.dtype, $"{what}: dtype {actual.dtype}, expected {expected.dtype}");
        using var scope = NewDisposeScope();
        var eps = Epsilon(expected.dtype);
        var diff = (actual.detach().to(ScalarType.Float64) - expected.to(ScalarType.Float64)).abs();
        var allowed = scale.to(ScalarType.Float64).abs().mul(ulps * eps);
        var excess = (diff - allowed).max().item<double>();
        Assert.True(actual.isfinite().all().item<bool>(), $"{what}: has NaN or Inf");
        Assert.True(excess <= 0,
            $"{what}: max |diff| {diff.max().item<double>():E3} exceeds {ulps} ulps (eps {eps:E3}) of the terms' magnitude (by {excess:E3})");
    }

    /// <summary>The magnitude of the terms a linear layer sums, |x|·|W|ᵀ + |b|: the scale of its rounding errors.</summary>
    public static Tensor LinearTermScale(Tensor x, Tensor weight, Tensor? bias)
        => nn.functional.linear(x.detach().abs(), weight.detach().abs(), bias?.detach().abs());

    /// <summary>The distance from 1 to the next larger value of <paramref name="dtype"/> (2⁻²³ for float32, 2⁻⁵² for float64).</summary>
    public static double Epsilon(ScalarType dtype) => dtype switch
    {
        ScalarType.Float64 => Math.BitIncrement(1.0) - 1.0,
        ScalarType.Float32 => MathF.BitIncrement(1f) - 1f,
        ScalarType.BFloat16 => 1.0 / 128,
        ScalarType.Float16 => 1.0 / 1024,
        _ => throw new ArgumentException($"no epsilon for {dtype}", nameof(dtype)),
    };
}
