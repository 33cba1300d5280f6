using System.Globalization;

namespace DoraSharp;

/// <summary>
/// The outcome of <see cref="ConvBackwardCheck.Run()"/>: how far libtorch's float32 conv2d input gradient
/// is from a float64 computation of the same problems.
/// </summary>
/// <param name="MaxRelativeError">Largest max|g32 − g64| / max(1, max|g64|) over the problems.</param>
/// <param name="WorstProblem">The problem with that error, e.g. "x (2, 3, 8, 8), W (8, 3, 3, 3), stride 1, padding 1".</param>
/// <param name="Problems">How many problems were run.</param>
/// <param name="MkldnnEnabled">libtorch's oneDNN switch during the check, or null when it is not reachable.</param>
public sealed record ConvBackwardReport(double MaxRelativeError, string WorstProblem, int Problems, bool? MkldnnEnabled)
{
    /// <summary>True when every problem is within <see cref="ConvBackwardCheck.Threshold"/>.</summary>
    public bool Correct => MaxRelativeError <= ConvBackwardCheck.Threshold;

    /// <summary>One line for a log or a CLI, e.g. "conv2d float32 input gradient: correct (max relative error 1.4e-06 ...)".</summary>
    public override string ToString()
    {
        var backend = MkldnnEnabled switch { true => "oneDNN on", false => "oneDNN off", null => "oneDNN switch unavailable" };
        return string.Create(CultureInfo.InvariantCulture,
            $"conv2d float32 input gradient: {(Correct ? "correct" : "WRONG")} (max relative error {MaxRelativeError:G2} vs float64 over {Problems} problems, worst {WorstProblem}; {backend})");
    }
}
