using DoraSharp.Examples.Experiments;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

[Collection(SeededRuns.Name)]
public sealed class DecompositionExperimentTests
{
    [Fact]
    public void Records_every_layer_of_every_method_at_evenly_spaced_checkpoints()
    {
        using var data = TinyExperiment.Load(ExperimentTask.Shift);
        var settings = new ExperimentSettings { PretrainEpochs = 1, FineTuneEpochs = 1 };
        var result = DecompositionExperiment.Run(data, settings, rank: 2, alpha: 4, checkpoints: 4);

        // 640 images / batch 64 = 10 steps: checkpoints at round(k·10/4) = 2, 5, 8, 10 (Math.Round: 2.5 → 2, 7.5 → 8).
        Assert.Equal(3 * 4 * 3, result.Points.Count);
        foreach (var method in DecompositionResult.Methods)
        {
            var points = result.Points.Where(p => p.Method == method).ToList();
            Assert.Equal(new long[] { 2, 5, 8, 10 }, points.Select(p => p.Step).Distinct());
            Assert.Equal(new[] { "layers.0", "layers.2", "layers.4" }, points.Select(p => p.Layer).Distinct());
            Assert.All(points, p => Assert.True(p.DeltaDirection > 0 && p.DeltaMagnitude > 0, $"{method} {p.Layer} did not move"));
            Assert.Equal(12, result.Fit(method).Count);
            Assert.InRange(result.Fit(method).Pearson, -1, 1);
        }
    }

    [Fact]
    public void Zero_checkpoints_are_refused()
    {
        using var data = TinyExperiment.Load(ExperimentTask.Shift);
        var e = Assert.Throws<ArgumentException>(() => DecompositionExperiment.Run(data, new ExperimentSettings(), 2, 4, 0));
        Assert.Contains("checkpoints", e.Message);
    }
}
