using System.Diagnostics;
using Xunit;

namespace DoraSharp.Tests.Examples;

/// <summary>
/// The examples (examples/*.cs) run as a user would run them, and their own checks pass. (The notebook
/// examples/lora_and_dora.ipynb needs the packed library and runs in scripts/consumer-test.sh.)
/// </summary>
public sealed class TutorialTests
{
    /// <summary>Runs <c>dotnet run examples/&lt;file&gt;</c> from the repository root as a user would; returns its output lines.</summary>
    private static async Task<string[]> RunExample(string file)
    {
        var root = Path.GetDirectoryName(Path.GetDirectoryName(Data.RepositoryData.MnistFolder))!;
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            WorkingDirectory = root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add("run");
        start.ArgumentList.Add(Path.Combine("examples", file));
        // The test host's MSBuild variables point at the running SDK's build of the tests; a nested build must find its own.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(name);

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"dotnet run examples/{file} did not finish in 5 minutes");
        }
        var output = await stdout;
        Assert.True(process.ExitCode == 0, $"exit code {process.ExitCode}\n{output}\n{await stderr}");
        return output.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
    }

    [Fact]
    public async Task The_named_adapters_example_runs_and_every_check_passes()
    {
        var lines = await RunExample("named_adapters.cs");
        Assert.Contains("All checks passed.", lines);
        var checks = lines.Where(l => l.StartsWith("check: ", StringComparison.Ordinal)).ToList();
        Assert.Equal(7, checks.Count);
        Assert.All(checks, c => Assert.Contains(": yes (", c));
        Assert.Contains("adapters: turned, flipped; active: turned", lines);
        Assert.Contains(lines, l => l.StartsWith("check: PEFT's layout: one sub-folder per adapter: yes", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("check: 'flipped' loaded from disk gives the same results: yes", StringComparison.Ordinal));
    }
}
