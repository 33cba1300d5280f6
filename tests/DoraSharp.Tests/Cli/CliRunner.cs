using DoraSharp.Cli.Commands;

namespace DoraSharp.Tests.Cli;

/// <summary>Runs `dora` in-process, as Program.cs does, capturing what it writes to stderr (and help to stdout).</summary>
internal static class CliRunner
{
    public static (int ExitCode, string Error, string Output) Run(params string[] args)
    {
        using var error = new StringWriter();
        using var output = new StringWriter();
        var code = DoraSharp.Cli.Cli.Run(CommandCatalog.CreateRoot(), args, error, output);
        return (code, error.ToString(), output.ToString());
    }
}
