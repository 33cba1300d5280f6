using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// Test classes that run a training command in-process (CliRunner) through to its progress bars: Spectre.Console's live
/// display is process-wide and refuses a second one at the same time, so these classes run one after another (in
/// parallel with the rest of the suite).
/// </summary>
[CollectionDefinition(Name)]
public sealed class InProcessRuns
{
    public const string Name = "In-process dora runs (one live display per process)";
}
