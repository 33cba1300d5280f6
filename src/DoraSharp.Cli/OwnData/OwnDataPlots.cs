using DoraSharp.Cli.Rendering;
using DoraSharp.MiniLM.OwnData;
using ScottPlot;

namespace DoraSharp.Cli.OwnData;

/// <summary>The plots of a `dora train` run: loss per epoch (train and validation), and the validation confusion matrix.</summary>
internal static class OwnDataPlots
{
    /// <summary>loss.png: mean training loss of each epoch and validation loss after it.</summary>
    public static void SaveLoss(string path, IReadOnlyList<EpochRecord> history, int bestEpoch)
    {
        var plot = new Plot();
        var xs = history.Select(h => (double)h.Epoch).ToArray();
        var train = plot.Add.Scatter(xs, history.Select(h => h.TrainLoss).ToArray());
        train.LegendText = "training (mean over the epoch)";
        train.LineWidth = 2;
        var validation = plot.Add.Scatter(xs, history.Select(h => h.ValidationLoss).ToArray());
        validation.LegendText = "validation (after the epoch)";
        validation.LineWidth = 2;
        var kept = plot.Add.VerticalLine(bestEpoch, 1, Colors.Gray, LinePattern.Dashed);
        kept.LegendText = $"epoch kept ({bestEpoch})";
        // Epochs are whole numbers: one tick per epoch, not 0.05 steps.
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(1);
        plot.Title("Loss per epoch");
        plot.XLabel("epoch");
        plot.YLabel("loss");
        plot.ShowLegend(Alignment.UpperRight);
        PngFile.Save(plot, path, 800, 500);
    }

    /// <summary>confusion.png: counts, true label on the rows, predicted on the columns.</summary>
    public static void SaveConfusion(string path, IReadOnlyList<string> labels, IReadOnlyList<IReadOnlyList<int>> confusion)
    {
        int n = labels.Count;
        var values = new double[n, n];
        for (int r = 0; r < n; r++) for (int c = 0; c < n; c++) values[r, c] = confusion[r][c];
        var plot = new Plot();
        var map = plot.Add.Heatmap(values);
        map.Colormap = new ScottPlot.Colormaps.Viridis();
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++)
            {
                // Heatmap row 0 is drawn at the top: cell (r, c) is centred at (c, n - 1 - r).
                var text = plot.Add.Text(confusion[r][c].ToString(System.Globalization.CultureInfo.InvariantCulture), c, n - 1 - r);
                text.LabelFontColor = Colors.White;
                text.LabelAlignment = Alignment.MiddleCenter;
            }
        var ticks = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        plot.Axes.Bottom.SetTicks(ticks, labels.ToArray());
        plot.Axes.Left.SetTicks(ticks, labels.Reverse().ToArray());
        plot.Title("Validation confusion matrix");
        plot.XLabel("predicted");
        plot.YLabel("true");
        int size = Math.Clamp(120 + 60 * n, 400, 1600);
        PngFile.Save(plot, path, size, size);
    }
}
