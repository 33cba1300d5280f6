using System.Text.Json.Nodes;
using DoraSharp.Cli;
using DoraSharp.Tests.IO;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora demo` killed with SIGKILL (no handler runs: what the OOM killer or a power cut does) at each point of its run,
/// then resumed with --resume, ends with exactly what an uninterrupted run writes: the same entries in --out, adapters and
/// base weights and losses.csv and the plot byte for byte, results.json equal but for times. --out starts with an older
/// run's outputs, none of which may survive beside the new results.
/// </summary>
public sealed class KilledRunTests(KilledRunTests.Reference reference) : IClassFixture<KilledRunTests.Reference>, IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private static string[] Args(string outDir) => ["demo", "--seeds", "1", "--epochs", "1", "--checkpoint-every", "40", "--out", outDir];

    /// <summary>Slow checkpoint writes and pauses at each step of publishing widen the windows the kills land in.</summary>
    private static readonly Dictionary<string, string> SlowRun = new()
    {
        [CheckpointFaultDelay.Variable] = "10",
        [RunOutputs.FaultDelayVariable] = "250",
    };

    /// <summary>The kill points: each kills the run as soon as its condition holds on --out.</summary>
    private static readonly Dictionary<string, Func<string, bool>> KillPoints = new()
    {
        ["during pretraining"] = o => Directory.GetDirectories(Phase(o, "pretraining"), "checkpoint-*").Length > 0,
        ["pretraining recorded"] = o => File.Exists(Path.Combine(Phase(o, "pretraining"), "phase.json")),
        ["during full fine-tuning"] = o => Directory.GetDirectories(Phase(o, "full"), "checkpoint-*").Length > 0,
        ["LoRA adapter saved"] = o => Directory.EnumerateFiles(Phase(o, "lora-r4"), "adapter_model.safetensors", SearchOption.AllDirectories).Any(),
        ["LoRA recorded"] = o => File.Exists(Path.Combine(Phase(o, "lora-r4"), "phase.json")),
        ["DoRA recorded"] = o => File.Exists(Path.Combine(Phase(o, "dora-r4"), "phase.json")),
        ["outputs staged"] = o => Directory.EnumerateDirectories(o, ".dora-staging-*").Any(),
        ["outputs half swapped"] = o => File.Exists(Path.Combine(o, "results.json")) && !File.ReadAllText(Path.Combine(o, "results.json")).Contains("older run"),
        ["outputs swapped"] = o => File.Exists(Path.Combine(o, "base", "config.json")),
    };

    public static TheoryData<string> Points() => [.. KillPoints.Keys];

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Phase(string outDir, string phase) => Path.Combine(outDir, "checkpoints", "seed-123", phase);

    [Theory]
    [MemberData(nameof(Points))]
    public async Task Killed_at_any_point_and_resumed_the_demo_writes_what_an_uninterrupted_run_writes(string point)
    {
        var outDir = _dir.File("killed");
        PlantOlderRun(outDir);
        // The last point's window is only the pauses after the final swap: widen them there, or a busy test machine
        // (the poller not scheduled for half a second) sees the run finish before the kill lands.
        var env = point == "outputs swapped" ? new Dictionary<string, string>(SlowRun) { [RunOutputs.FaultDelayVariable] = "2000" } : SlowRun;
        using (var run = CliProcess.Start(env, Args(outDir)))
        {
            await run.WaitUntilAsync(() => KillPoints[point](outDir), Timeout, point);
            run.Signal(CliProcess.SIGKILL);
            var (code, _, error) = await run.WaitForExitAsync(Timeout);
            Assert.True(code == 128 + CliProcess.SIGKILL, $"killed at '{point}': exit {code}: {error}");
        }

        var resumed = await CliProcess.RunAsync(null, Timeout, [.. Args(outDir), "--resume"]);
        Assert.True(resumed.ExitCode == 0, $"resume after a kill at '{point}': exit {resumed.ExitCode}: {resumed.Error}");

        AssertSameOutputs(reference.OutDir, outDir);
        Assert.False(Directory.Exists(Path.Combine(outDir, "checkpoints", "seed-123")), "the finished run deletes its checkpoints");
    }

    /// <summary>What an older demo run (another rank, say) left: every entry must be gone or replaced.</summary>
    private static void PlantOlderRun(string outDir)
    {
        Directory.CreateDirectory(Path.Combine(outDir, "adapters", "lora-r8"));
        Directory.CreateDirectory(Path.Combine(outDir, "adapters", "lora-r4"));
        Directory.CreateDirectory(Path.Combine(outDir, "base"));
        File.WriteAllText(Path.Combine(outDir, "results.json"), "{\"from\": \"an older run\"}");
        File.WriteAllText(Path.Combine(outDir, "loss_curves.png"), "an older run's plot");
        File.WriteAllText(Path.Combine(outDir, "adapters", "lora-r8", "adapter_model.safetensors"), "an older run's adapter");
        File.WriteAllText(Path.Combine(outDir, "adapters", "lora-r4", "adapter_model.safetensors"), "an older run's adapter");
        File.WriteAllText(Path.Combine(outDir, "base", "model.safetensors"), "an older run's base");
    }

    internal static void AssertSameOutputs(string expectedDir, string actualDir)
    {
        var expected = Files(expectedDir);
        Assert.Equal(expected, Files(actualDir));
        foreach (var file in expected)
        {
            if (file == "results.json")
                Assert.Equal(Results(Path.Combine(expectedDir, file)), Results(Path.Combine(actualDir, file)));
            else
                Assert.True(File.ReadAllBytes(Path.Combine(expectedDir, file)).SequenceEqual(File.ReadAllBytes(Path.Combine(actualDir, file))), $"{file} differs");
        }
    }

    /// <summary>Every file under --out but the lock files and the checkpoint folder, relative, sorted.</summary>
    private static string[] Files(string dir) =>
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f))
            .Where(f => !f.StartsWith("checkpoints" + Path.DirectorySeparatorChar, StringComparison.Ordinal) && Path.GetFileName(f) != FolderLock.FileName)
            .Order(StringComparer.Ordinal).ToArray();

    /// <summary>results.json without what differs between any two runs: the creation time and the training times.</summary>
    private static string Results(string path)
    {
        var json = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        json.Remove("created_utc");
        json["pretraining"]!.AsObject().Remove("train_seconds");
        foreach (var method in json["methods"]!.AsArray()) method!.AsObject().Remove("train_seconds");
        return json.ToJsonString();
    }

    /// <summary>One uninterrupted run, shared by the kill points.</summary>
    public sealed class Reference : IAsyncLifetime
    {
        private readonly TempDirectory _dir = new();

        public string OutDir => _dir.File("reference");

        public async Task InitializeAsync()
        {
            var run = await CliProcess.RunAsync(null, Timeout, Args(OutDir));
            Assert.True(run.ExitCode == 0, run.Error);
        }

        public Task DisposeAsync()
        {
            _dir.Dispose();
            return Task.CompletedTask;
        }
    }
}
