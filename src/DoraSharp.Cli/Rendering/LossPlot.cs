using DoraSharp.Examples.Experiments;
using ScottPlot;

namespace DoraSharp.Cli.Rendering;

/// <summary>
/// loss_curves.png: the training loss against the step, pretraining first and then each fine-tuned method from
/// the same point, so the jump at the domain shift and the recovery of each method are visible side by side.
/// </summary>
internal static class LossPlot
{
    /// <summary>Moving-average window: single-batch losses are too noisy to compare methods by eye.</summary>
    private const int Window = 10;

    public static void Save(string path, ExperimentResult result)
    {
        var plot = new Plot();
        var pretrain = MeanOverSeeds(result.Pretraining.Runs);
        var offset = pretrain.Length;
        var top = AddCurve(plot, "Pretraining", pretrain, 0);
        foreach (var arm in result.Arms.Where(a => a.TrainableParameters > 0))
            top = System.Math.Max(top, AddCurve(plot, arm.Arm.Label, MeanOverSeeds(arm.Runs), offset));
        var start = plot.Add.VerticalLine(offset + 0.5, 1, Colors.Gray, LinePattern.Dashed);
        start.LegendText = result.Data.Task == ExperimentTask.Shift ? "Fine-tuning starts (images turned 90°)" : "Fine-tuning starts";
        var seeds = result.Settings.Seeds > 1 ? $", mean of {result.Settings.Seeds} seeds" : "";
        plot.Title($"Training loss, {result.Data.Dataset}, task {result.Data.Task.ToString().ToLowerInvariant()}");
        plot.XLabel("step (batches of " + result.Settings.Training.BatchSize + ")");
        plot.YLabel($"cross-entropy (moving average of {Window} steps{seeds})");
        plot.Axes.SetLimitsY(0, double.IsFinite(top) && top > 0 ? top * 1.05 : 1);
        plot.ShowLegend(Alignment.UpperRight);
        PngFile.Save(plot, path, 1000, 600);
    }

    /// <summary>Adds one smoothed curve and returns its highest finite value.</summary>
    private static double AddCurve(Plot plot, string label, double[] losses, int offset)
    {
        var smooth = MovingAverage(losses);
        var xs = Enumerable.Range(offset + 1, smooth.Length).Select(i => (double)i).ToArray();
        var line = plot.Add.ScatterLine(xs, smooth);
        line.LegendText = label;
        line.LineWidth = 2;
        return smooth.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
    }

    /// <summary>The loss of each step averaged over seeds (skipped, non-finite steps left out of the mean).</summary>
    private static double[] MeanOverSeeds(IReadOnlyList<SeedRun> runs)
    {
        var steps = runs.Min(r => r.Losses.Count);
        return Enumerable.Range(0, steps).Select(i =>
        {
            var finite = runs.Select(r => (double)r.Losses[i]).Where(double.IsFinite).ToList();
            return finite.Count > 0 ? finite.Average() : double.NaN;
        }).ToArray();
    }

    /// <summary>Trailing mean over up to <see cref="Window"/> steps (shorter at the start), ignoring non-finite values.</summary>
    private static double[] MovingAverage(double[] values)
    {
        var result = new double[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            var window = values[System.Math.Max(0, i - Window + 1)..(i + 1)].Where(double.IsFinite).ToList();
            result[i] = window.Count > 0 ? window.Average() : double.NaN;
        }
        return result;
    }
}
