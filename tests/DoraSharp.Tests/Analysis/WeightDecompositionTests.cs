using DoraSharp.Analysis;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

public sealed class WeightDecompositionTests
{
    private static Tensor M(double[,] values) => torch.tensor(values, dtype: ScalarType.Float64);

    [Fact]
    public void Pure_row_scaling_changes_magnitude_only()
    {
        // Row norms 5 and 2; scaled by 2 and 0.5 → 10 and 1: ΔM = (5 + 1) / 2 = 3, directions unchanged.
        var change = WeightDecomposition.Measure(M(new double[,] { { 3, 4 }, { 0, 2 } }), M(new double[,] { { 6, 8 }, { 0, 1 } }));
        Assert.Equal(3.0, change.DeltaMagnitude, 12);
        Assert.Equal(0.0, change.DeltaDirection, 12);
    }

    [Fact]
    public void Pure_rotation_changes_direction_only()
    {
        // Row 1 rotated by 90° (cos 0), row 2 by 60° (cos 0.5): ΔD = ((1 − 0) + (1 − 0.5)) / 2 = 0.75; norms kept.
        var s3 = System.Math.Sqrt(3);
        var change = WeightDecomposition.Measure(M(new double[,] { { 1, 0 }, { 0, 2 } }), M(new double[,] { { 0, 1 }, { -s3, 1 } }));
        Assert.Equal(0.0, change.DeltaMagnitude, 12);
        Assert.Equal(0.75, change.DeltaDirection, 12);
    }

    [Fact]
    public void A_given_magnitude_vector_replaces_the_row_norms()
    {
        // DoRA: direction from the weight, magnitude from m (here 7 and 2 against norms 5 and 2): ΔM = 1.
        var w0 = M(new double[,] { { 3, 4 }, { 0, 2 } });
        var change = WeightDecomposition.Measure(w0, w0, torch.tensor(new[] { 7.0, 2.0 }));
        Assert.Equal(1.0, change.DeltaMagnitude, 12);
        Assert.Equal(0.0, change.DeltaDirection, 12);
    }

    [Fact]
    public void Mismatched_shapes_are_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => WeightDecomposition.Measure(torch.zeros(2, 3), torch.zeros(3, 2)));
        Assert.Contains("[2, 3]", e.Message);
    }

    [Theory]
    [InlineData(new double[] { 1, 2, 3 }, new double[] { 2, 4, 6 }, 2.0, 1.0)]
    [InlineData(new double[] { 1, 2, 3 }, new double[] { 3, 2, 1 }, -1.0, -1.0)]
    [InlineData(new double[] { 0, 1, 2 }, new double[] { 0, 1, 1 }, 0.5, 0.8660254037844386)] // sxy = 1, sxx = 2, syy = 2/3
    public void Linear_fit_gives_slope_and_pearson(double[] xs, double[] ys, double slope, double r)
    {
        var fit = LinearFit.Of(xs.Zip(ys).ToList());
        Assert.Equal(slope, fit.Slope, 12);
        Assert.Equal(r, fit.Pearson, 12);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Effective_weight_is_what_the_layer_applies(bool dora)
    {
        torch.manual_seed(3);
        var linear = nn.Linear(6, 4);
        var layer = new LoraLinear(linear, new LoraConfig { R = 2, LoraAlpha = 4, UseDora = dora, TargetModules = ["x"] });
        using (no_grad()) { layer.LoraB.normal_(); if (dora) layer.Magnitude!.mul_(1.5); }
        var effective = layer.EffectiveWeight();
        var x = torch.randn(5, 6);
        layer.eval();
        TensorAssert.Close(nn.functional.linear(x, effective, layer.Bias), layer.call(x), 1e-5, 1e-6, "x·W_effᵀ + b vs forward");
        if (dora)
            TensorAssert.Close(layer.Magnitude!, linalg.vector_norm(effective, 2, new long[] { 1 }, false), 1e-5, 1e-6, "row norms of the DoRA weight are m");
    }

    [Fact]
    public void Tracker_records_LoRA_moving_magnitude_and_direction_together_from_zero()
    {
        torch.manual_seed(4);
        var model = new Mlp(12, 8, 6, 3);
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 2, LoraAlpha = 4, TargetModulesRegex = @"layers\.\d" });
        using var tracker = MagnitudeDirectionTracker.ForAdapters("LoRA", lora);
        tracker.Record(0, 0);
        Assert.All(tracker.Points, p => { Assert.Equal(0, p.DeltaDirection, 12); Assert.Equal(0, p.DeltaMagnitude, 12); });
        using (no_grad()) foreach (var l in lora.Layers.Values) l.LoraB.normal_();
        tracker.Record(1, 10);
        var moved = tracker.Points.Where(p => p.Checkpoint == 1).ToList();
        Assert.Equal(new[] { "layers.0", "layers.2", "layers.4" }, moved.Select(p => p.Layer));
        Assert.All(moved, p => { Assert.True(p.DeltaDirection > 0); Assert.True(p.DeltaMagnitude > 0); Assert.Equal(10, p.Step); });
    }
}
