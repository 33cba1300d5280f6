using System.CommandLine;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// The checkpoint options of the resumable commands (`dora demo`, `dora compare`): where to checkpoint, how often,
/// how many to keep, and whether to continue an interrupted run. <see cref="ExperimentRun"/> acts on them.
/// </summary>
internal sealed class ResumeOptions
{
    public Option<string?> Directory { get; } = new("--checkpoint-dir")
    {
        Description = "Folder for resumable checkpoints (default: <out>/checkpoints; deleted when the run finishes).",
        HelpName = "DIR",
    };
    public Option<int> Every { get; } = OptionRules.Whole("--checkpoint-every", 0, 0, 1_000_000,
        "Also checkpoint every N steps (0: at the end of each epoch and when stopped by Ctrl+C or SIGTERM only).");
    public Option<int> Keep { get; } = OptionRules.Whole("--keep", 2, 1, 100, "Checkpoints kept per phase.");
    public Option<bool> Resume { get; } = new("--resume")
    {
        Description = "Continue an interrupted run from its checkpoints: finished phases are skipped, the interrupted one resumes.",
    };

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Directory, Every, Keep, Resume }) command.Options.Add(option);
    }

    public CheckpointChoice Choice(ParseResult p) => new(p.GetValue(Directory), p.GetValue(Every), p.GetValue(Keep), p.GetValue(Resume));
}
