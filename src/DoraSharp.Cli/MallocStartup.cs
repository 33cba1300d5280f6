namespace DoraSharp.Cli;

/// <summary>
/// `dora` keeps freed tensor memory in the process (<see cref="MallocTuning"/>; docs/performance.md, "The memory
/// allocator") unless <see cref="MallocTuning.SwitchVariable"/> is 0: a CLI process trains or predicts until it ends,
/// so holding its peak heap costs nothing a later step would not take back.
/// </summary>
internal static class MallocStartup
{
    /// <summary>Applies the tuning as the environment asks; returns an exit code to stop with (a misspelt switch), or null to go on.</summary>
    public static int? Apply(string? switchValue)
    {
        try
        {
            if (MallocTuning.IsEnabledBy(switchValue)) MallocTuning.Apply();
            return null;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"dora: {e.Message}");
            return Cli.UsageError;
        }
    }
}
