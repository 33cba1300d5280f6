using System.CommandLine;

namespace DoraSharp.Cli.Commands;

/// <summary>Every `dora` subcommand, in the order `dora --help` lists them.</summary>
internal static class CommandCatalog
{
    public const string Description =
        "DoraSharp: LoRA and DoRA fine-tuning for .NET on TorchSharp, numerically identical to Hugging Face PEFT.";

    public static IEnumerable<Command> All()
    {
        yield return DemoCommand.Create();
        yield return CompareCommand.Create();
        yield return AnalyzeCommand.Create();
        yield return BenchCommand.Create();
        yield return MiniLmCheckCommand.Create();
        yield return MiniLmDemoCommand.Create();
        yield return TrainFixtureCommand.Create();
        yield return TrainCommand.Create();
        yield return PredictCommand.Create();
        yield return ExportCommand.Create();
        yield return DoctorCommand.Create();
    }

    /// <summary>The `dora` root command with every subcommand (Program.cs runs it; tests run it in-process).</summary>
    public static RootCommand CreateRoot()
    {
        var root = new RootCommand(Description);
        foreach (var command in All()) root.Subcommands.Add(command);
        VersionWithBlas.Install(root);
        return root;
    }
}
