using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Layers;

/// <summary>
/// DoraRowNorm.Fast, the DoRA forward's norm: small layers take the direct sum (few native calls), larger ones
/// the factored form; both are the norm of W + s·B·A up to float rounding.
/// </summary>
public sealed class RowNormDispatchTests
{
    [Theory]
    [InlineData(32, 784, 16, 2.0)]      // the demo MLP's first layer: direct
    [InlineData(10, 64, 4, 0.5)]
    [InlineData(256, 256, 8, 1.7)]      // 65,536 weights: factored
    public void Row_norm_matches_the_float64_norm_on_both_sides_of_the_threshold(int outF, int inF, int r, double s)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(5);
        var w = randn([outF, inF], generator: generator);
        var a = randn([r, inF], generator: generator) * 0.1;
        var b = randn([outF, r], generator: generator) * 0.1;
        var exact = linalg.vector_norm(w.to(ScalarType.Float64) + s * b.to(ScalarType.Float64).matmul(a.to(ScalarType.Float64)), dims: [1]);
        var norm = DoraRowNorm.Fast(w, a, b, s);
        Assert.Equal(ScalarType.Float32, norm.dtype);
        var relative = ((norm.to(ScalarType.Float64) - exact).abs() / exact).max().item<double>();
        Assert.True(relative < 2e-6, $"max relative error {relative:E2}");

        // The dispatch: the same function as the one chosen, op for op (exact equality: the same ops run twice).
        var small = (long)outF * inF <= DoraRowNorm.DirectMaxElements;
        var chosen = small ? DoraRowNorm.Direct(w, a, b, s) : DoraRowNorm.Factored(w, a, b, s);
        Assert.True(chosen.allclose(norm, rtol: 0, atol: 0), "RowNorm did not take the path its size selects");
    }

    [Fact]
    public void The_direct_norm_leaves_its_inputs_unchanged_and_is_exactly_W_s_norm_at_B_zero()
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(6);
        var w = randn([16, 24], generator: generator);
        var a = randn([4, 24], generator: generator);
        var b = randn([16, 4], generator: generator);
        var (w0, a0, b0) = (w.clone(), a.clone(), b.clone());
        DoraRowNorm.Direct(w, a, b, 3.0);
        Assert.True(w.allclose(w0, rtol: 0, atol: 0) && a.allclose(a0, rtol: 0, atol: 0) && b.allclose(b0, rtol: 0, atol: 0), "DoraRowNorm.Direct wrote into an input");
        // At initialisation (B = 0) m must equal n exactly for the output to equal the base layer's bit for bit.
        Assert.True(DoraRowNorm.Direct(w, a, zeros(16, 4), 3.0).allclose(linalg.vector_norm(w, dims: [1]), rtol: 0, atol: 0));
    }
}
