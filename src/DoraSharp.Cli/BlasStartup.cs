namespace DoraSharp.Cli;

/// <summary>
/// The MKL vendor fix at start-up (issue 15, docs/performance.md): on a non-Intel x86 CPU with MKL in libtorch,
/// `dora` re-executes itself with the fix in LD_PRELOAD before anything else runs. <see cref="Decision"/> keeps
/// why it did or did not, for `dora doctor` and `dora --version`.
/// </summary>
internal static class BlasStartup
{
    /// <summary>The start-up decision, or null when the CLI runs in-process (tests call Cli.Run directly).</summary>
    public static MklVendorFixDecision? Decision { get; private set; }

    /// <summary>Re-executes with the fix when needed (then never returns); returns an exit code to stop with, or null to go on.</summary>
    public static int? Apply(string[] args)
    {
        try
        {
            Decision = MklVendorFix.ReexecuteIfNeeded(args);
            return null;
        }
        catch (ArgumentException e)
        {
            // A misspelt DORASHARP_MKL_VENDOR_FIX: say which value and what is accepted rather than guess.
            Console.Error.WriteLine($"dora: {e.Message}");
            return Cli.UsageError;
        }
    }

    /// <summary>The decision for this process: the one taken at start-up, or one taken now for an in-process run.</summary>
    public static MklVendorFixDecision Current()
    {
        if (Decision is { } d) return d;
        try
        {
            return MklVendorFix.CurrentDecision();
        }
        catch (ArgumentException e)
        {
            return new MklVendorFixDecision(false, e.Message);
        }
    }
}
