using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>Assertions on what a `dora` run printed, shared by the command tests.</summary>
internal static class CliAssert
{
    /// <summary>
    /// The run was refused as bad input: exit code 2 and exactly one line on stderr, "dora: …", naming no exception
    /// type (the user sees a sentence, not a stack) and containing every one of <paramref name="fragments"/>.
    /// </summary>
    public static void UsageError((int Code, string Error, string Output) result, params string[] fragments)
    {
        Assert.Equal(2, result.Code);
        var lines = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got:\n{result.Error}");
        Assert.StartsWith("dora: ", lines[0]);
        Assert.DoesNotContain("Exception", lines[0]);
        foreach (var f in fragments) Assert.True(lines[0].Contains(f, StringComparison.Ordinal), $"'{f}' not in: {lines[0]}");
    }
}
