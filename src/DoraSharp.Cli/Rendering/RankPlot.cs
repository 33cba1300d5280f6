using System.Globalization;
using DoraSharp.Examples.Experiments;
using ScottPlot;

namespace DoraSharp.Cli.Rendering;

/// <summary>
/// accuracy_vs_rank.png: LoRA and DoRA test accuracy against the rank (log₂ axis), ± one sample standard
/// deviation over seeds, with full fine-tuning and the frozen base as horizontal references.
/// </summary>
internal static class RankPlot
{
    public static void Save(string path, ExperimentResult result, IReadOnlyList<int> ranks)
    {
        var plot = new Plot();
        var sorted = ranks.Order().ToList();
        var xs = sorted.Select(r => System.Math.Log2(r)).ToArray();
        var pairs = ResultTables.RankPairs(result, sorted).ToList();
        AddSeries(plot, "LoRA", xs, pairs.Select(p => p.Lora.Accuracy).ToList());
        AddSeries(plot, "DoRA", xs, pairs.Select(p => p.Dora.Accuracy).ToList());
        foreach (var reference in result.Arms.Where(a => !a.Arm.IsAdapter))
        {
            var line = plot.Add.HorizontalLine(100 * reference.Accuracy.Mean, 1.5f, Colors.Gray,
                reference.Arm.Method == FineTuneMethod.Full ? LinePattern.Dashed : LinePattern.Dotted);
            line.LegendText = $"{reference.Arm.Label} ({ResultTables.Accuracy(reference.Accuracy)})";
        }
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(xs,
            sorted.Select(r => r.ToString(CultureInfo.InvariantCulture)).ToArray());
        var seeds = result.Settings.Seeds > 1 ? $"mean ± std of {result.Settings.Seeds} seeds" : $"seed {result.Settings.Seed}";
        var test = result.Data.Task == ExperimentTask.Shift ? "test images turned 90°" : "test images";
        plot.Title($"LoRA vs DoRA by rank: {result.Data.Dataset}, {result.Data.TestImages:N0} {test}");
        plot.XLabel("rank r (log scale)");
        plot.YLabel($"test accuracy, % ({seeds})");
        plot.ShowLegend(Alignment.LowerRight);
        PngFile.Save(plot, path, 900, 600);
    }

    private static void AddSeries(Plot plot, string label, double[] xs, IReadOnlyList<Summary> accuracies)
    {
        var ys = accuracies.Select(a => 100 * a.Mean).ToArray();
        var line = plot.Add.Scatter(xs, ys);
        line.LegendText = label;
        line.LineWidth = 2;
        line.MarkerSize = 8;
        if (accuracies.All(a => a.Std is not null))
        {
            var bars = plot.Add.ErrorBar(xs, ys, accuracies.Select(a => 100 * a.Std!.Value).ToArray());
            bars.Color = line.Color;
        }
    }
}
