namespace DoraSharp.Analysis;

/// <summary>Least-squares line y = Slope·x + Intercept and Pearson's correlation r of a set of points.</summary>
public readonly record struct LinearFit(double Slope, double Intercept, double Pearson, int Count)
{
    /// <summary>Fits the points; with fewer than two distinct x values the slope and r are NaN.</summary>
    public static LinearFit Of(IReadOnlyList<(double X, double Y)> points)
    {
        var n = points.Count;
        if (n == 0) return new LinearFit(double.NaN, double.NaN, double.NaN, 0);
        double mx = points.Average(p => p.X), my = points.Average(p => p.Y);
        double sxx = 0, syy = 0, sxy = 0;
        foreach (var (x, y) in points)
        {
            sxx += (x - mx) * (x - mx);
            syy += (y - my) * (y - my);
            sxy += (x - mx) * (y - my);
        }
        var slope = sxx > 0 ? sxy / sxx : double.NaN;
        var r = sxx > 0 && syy > 0 ? sxy / System.Math.Sqrt(sxx * syy) : double.NaN;
        return new LinearFit(slope, double.IsNaN(slope) ? double.NaN : my - slope * mx, r, n);
    }
}
