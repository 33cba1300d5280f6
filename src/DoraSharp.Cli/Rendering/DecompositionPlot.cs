using System.Globalization;
using DoraSharp.Examples.Experiments;
using ScottPlot;

namespace DoraSharp.Cli.Rendering;

/// <summary>
/// The paper's Figure 2 for one method: ΔD on x, ΔM on y, one point per (layer, checkpoint), coloured by
/// checkpoint and labelled by layer, with the least-squares line and Pearson's r in the title.
/// </summary>
internal static class DecompositionPlot
{
    public static void Save(string path, DecompositionResult result, string method)
    {
        var plot = new Plot();
        var points = result.Points.Where(p => p.Method == method).ToList();
        var palette = new ScottPlot.Palettes.Category10();
        foreach (var group in points.GroupBy(p => p.Checkpoint).OrderBy(g => g.Key))
        {
            var scatter = plot.Add.ScatterPoints(group.Select(p => p.DeltaDirection).ToArray(), group.Select(p => p.DeltaMagnitude).ToArray());
            scatter.Color = palette.GetColor(group.Key - 1);
            scatter.MarkerSize = 10;
            scatter.LegendText = $"checkpoint {group.Key} (step {group.First().Step})";
            foreach (var p in group)
            {
                var label = plot.Add.Text(p.Layer, p.DeltaDirection, p.DeltaMagnitude);
                label.LabelFontSize = 11;
                label.LabelFontColor = scatter.Color;
                label.OffsetX = 6;
                label.OffsetY = -6;
            }
        }
        var fit = result.Fit(method);
        if (double.IsFinite(fit.Slope) && points.Count > 1)
        {
            double x0 = points.Min(p => p.DeltaDirection), x1 = points.Max(p => p.DeltaDirection);
            var line = plot.Add.Line(x0, fit.Intercept + fit.Slope * x0, x1, fit.Intercept + fit.Slope * x1);
            line.LineColor = Colors.Gray;
            line.LinePattern = LinePattern.Dashed;
            line.LegendText = string.Create(CultureInfo.InvariantCulture, $"fit: slope {fit.Slope:G3}");
        }
        plot.Title(string.Create(CultureInfo.InvariantCulture,
            $"{method}: magnitude vs direction change (Pearson r = {fit.Pearson:F2}, {points.Count} points)"));
        plot.XLabel("ΔD = mean over rows (1 − cos(W_t, W₀))");
        plot.YLabel("ΔM = mean over rows |m_t − m₀|");
        // Room for the layer labels at the edges, and the legend beside the plot so it hides no point.
        if (points.Count > 0)
        {
            double x0 = points.Min(p => p.DeltaDirection), x1 = points.Max(p => p.DeltaDirection);
            double y0 = points.Min(p => p.DeltaMagnitude), y1 = points.Max(p => p.DeltaMagnitude);
            double dx = System.Math.Max(x1 - x0, 1e-6), dy = System.Math.Max(y1 - y0, 1e-6);
            plot.Axes.SetLimits(x0 - 0.05 * dx, x1 + 0.18 * dx, y0 - 0.08 * dy, y1 + 0.1 * dy);
        }
        plot.ShowLegend(Edge.Right);
        PngFile.Save(plot, path, 1100, 650);
    }
}
