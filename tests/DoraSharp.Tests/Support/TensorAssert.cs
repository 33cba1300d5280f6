using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>Element-wise closeness with the golden README's rule |actual − expected| ≤ atol + rtol·|expected|.</summary>
internal static class TensorAssert
{
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

    public static void Equal(Tensor expected, Tensor actual, string what)
    {
        Assert.True(expected.shape.SequenceEqual(actual.shape), $"{what}: shapes differ");
        Assert.True(expected.dtype == actual.dtype, $"{what}: dtype {actual.dtype}, expected {expected.dtype}");
        Assert.True(expected.allclose(actual, rtol: 0, atol: 0), $"{what}: not bit-identical (max |diff| {(expected.to(ScalarType.Float64) - actual.to(ScalarType.Float64)).abs().max().item<double>():E3})");
    }
}
