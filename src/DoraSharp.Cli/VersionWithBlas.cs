using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;

namespace DoraSharp.Cli;

/// <summary>
/// `dora --version`: the version, then which BLAS path libtorch takes and why (issue 15), without the sgemm timing
/// (`dora doctor` has the full report).
/// </summary>
internal sealed class VersionWithBlas : SynchronousCommandLineAction
{
    /// <summary>Replaces the root command's version action with this one.</summary>
    public static void Install(RootCommand root)
    {
        foreach (var option in root.Options.OfType<VersionOption>()) option.Action = new VersionWithBlas();
    }

    public override int Invoke(ParseResult parseResult)
    {
        var output = parseResult.InvocationConfiguration.Output;
        var version = typeof(VersionWithBlas).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                      ?? typeof(VersionWithBlas).Assembly.GetName().Version?.ToString() ?? "unknown";
        output.WriteLine(version);
        var report = BlasCheck.Run(measureSgemm: false);
        output.WriteLine($"BLAS: {report.Path}{(report.MklCodePath is { } c ? $" (MKL code path {c})" : "")}. {report.Explanation}");
        output.WriteLine($"MKL vendor fix at start-up: {BlasStartup.Current().Reason}");
        return 0;
    }
}
