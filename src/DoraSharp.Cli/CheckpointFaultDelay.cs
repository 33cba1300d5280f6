using System.Globalization;

namespace DoraSharp.Cli;

/// <summary>
/// The fault-injection tests' pause between a checkpoint's files (KilledRunTests, InterruptedRunTests,
/// OutputLockTests, FaultInjectionTests kill a run mid-write). The CLI reads the variable and hands the pause to the
/// library through the internal <c>CheckpointOptions.PauseBetweenFiles</c>: the library itself reads no environment.
/// </summary>
internal static class CheckpointFaultDelay
{
    /// <summary>Milliseconds to sleep between the files of a checkpoint; unset or not a positive integer means none.</summary>
    public const string Variable = "DORASHARP_FAULT_DELAY_CHECKPOINT_MS";

    /// <summary>The pause the variable asks for, or zero.</summary>
    public static TimeSpan FromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable(Variable), NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.Zero;
}
