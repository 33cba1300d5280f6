using System.CommandLine;

namespace DoraSharp.Cli.Commands;

/// <summary>Every `dora` subcommand, in the order `dora --help` lists them.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return DemoCommand.Create();
        yield return BenchCommand.Create();
        yield return MiniLmCheckCommand.Create();
        yield return MiniLmDemoCommand.Create();
    }
}
