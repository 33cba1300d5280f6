using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Export;

/// <summary>
/// A service without TorchSharp (issue 18): examples/deploy, which references DoraSharp.Onnx only, is built on its
/// own, must carry no TorchSharp assembly nor libtorch, and must classify the run's validation set as `dora predict`
/// does through TorchSharp. Its Service.cs is the snippet docs/deploy.md shows, so the documented code compiles.
/// </summary>
[Collection(ExportRuns.Name)]
public sealed class OnnxConsumerTests(ExportFixture fixture)
{
    private static readonly string Example = Path.Combine(ExportFixture.RepositoryRoot, "examples", "deploy");

    [Fact]
    public void The_documented_snippet_is_the_consumer_s_service_verbatim()
    {
        var snippet = File.ReadAllText(Path.Combine(Example, "Service.cs")).ReplaceLineEndings("\n").Trim();
        var doc = File.ReadAllText(Path.Combine(ExportFixture.RepositoryRoot, "docs", "deploy.md")).ReplaceLineEndings("\n");
        Assert.Contains("```csharp\n" + snippet + "\n```", doc);
    }

    [Fact]
    public void A_consumer_without_torchsharp_predicts_the_validation_set_as_dora_predict_does()
    {
        using var work = new TempDirectory();
        // A build of its own (--artifacts-path): the repository's bin/ and obj/ stay as the test run built them.
        var build = Dotnet(Example, "build", Path.Combine(Example, "DeployConsumer.csproj"), "-c", "Release", "-nologo", "-v", "quiet",
            "--artifacts-path", work.Path, "-nodeReuse:false", "-p:UseSharedCompilation=false");
        Assert.True(build.Code == 0, $"building examples/deploy failed:\n{build.Output}");
        var output = Path.Combine(work.Path, "bin", "DeployConsumer", "release");
        var files = Directory.EnumerateFiles(output, "*", SearchOption.AllDirectories).Select(Path.GetFileName).ToArray();
        Assert.Contains("DoraSharp.Onnx.dll", files);
        Assert.Contains("Microsoft.ML.OnnxRuntime.dll", files);
        Assert.DoesNotContain(files, f => f!.Contains("TorchSharp", StringComparison.OrdinalIgnoreCase) || f.Contains("libtorch", StringComparison.OrdinalIgnoreCase)
                                          || f.StartsWith("DoraSharp.MiniLM", StringComparison.Ordinal) || f == "DoraSharp.dll");
        Assert.DoesNotContain("TorchSharp", File.ReadAllText(Path.Combine(output, "DeployConsumer.deps.json")), StringComparison.OrdinalIgnoreCase);

        var validation = Path.Combine(fixture.ClassificationRun, "validation.jsonl");
        var run = Dotnet(work.Path, Path.Combine(output, "DeployConsumer.dll"), "predict", fixture.ClassificationModel, validation);
        Assert.True(run.Code == 0, run.Output);
        var consumer = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r').Split('\t')).ToArray();

        var torch = work.File("torch.jsonl");
        ExportFixture.Run("predict", "--run", fixture.ClassificationRun, "--data", validation, "--output", torch);
        var expected = File.ReadAllLines(torch);
        Assert.Equal(expected.Length, consumer.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            using var row = JsonDocument.Parse(expected[i]);
            Assert.Equal(row.RootElement.GetProperty("predicted").GetString(), consumer[i][0]);
            string[] labels = ["bad", "good"];
            for (int c = 0; c < labels.Length; c++)
                Assert.InRange(float.Parse(consumer[i][c + 1], CultureInfo.InvariantCulture) - row.RootElement.GetProperty("probabilities").GetProperty(labels[c]).GetSingle(), -1e-4, 1e-4);
        }
    }

    private static (int Code, string Output) Dotnet(string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            return (-1, $"dotnet {string.Join(' ', args)}: no exit within 5 minutes\n{stdout}");
        }
        return (process.ExitCode, stdout + stderr.Result);
    }
}
