using System.Text.Json.Nodes;
using DoraSharp.Cli;
using DoraSharp.Tests.IO;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// A folder a run writes (--out, --checkpoint-dir) is locked for the run: a second run into it is refused at once, in
/// one line, before it writes anything, and a killed run does not leave the lock behind (the OS drops it).
/// </summary>
public sealed class OutputLockTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);
    private static readonly Dictionary<string, string> SlowCheckpoints = new() { [CheckpointFaultDelay.Variable] = "10" };

    /// <summary>
    /// With --checkpoint-every 10: some 40 checkpoints after the first of full fine-tuning, each slowed by 50 ms, and a
    /// pause at each step of writing the outputs, so the first run surely still runs when the second starts.
    /// </summary>
    private static readonly Dictionary<string, string> VerySlowCheckpoints = new()
    {
        [CheckpointFaultDelay.Variable] = "50",
        [RunOutputs.FaultDelayVariable] = "500",
    };

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("demo")]
    [InlineData("compare")]
    [InlineData("analyze")]
    [InlineData("minilm-demo")]
    public void A_folder_locked_by_another_run_is_refused_before_anything_is_written(string command)
    {
        var outDir = _dir.File("out");
        Directory.CreateDirectory(outDir);
        // What a running dora holds (FolderLock): the lock file open with FileShare.None.
        using (new FileStream(Path.Combine(outDir, FolderLock.FileName), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            var (code, error, _) = CliRunner.Run(command, "--out", outDir);
            Assert.Equal(2, code);
            Assert.Equal($"dora: --out '{outDir}' is in use by another dora run (it holds {Path.Combine(outDir, FolderLock.FileName)}); " +
                         "wait for that run to end or choose another folder.", error.TrimEnd());
        }
        Assert.Equal([FolderLock.FileName], Directory.EnumerateFileSystemEntries(outDir).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_second_run_into_the_same_out_is_refused_and_the_first_writes_alone()
    {
        var outDir = _dir.File("out");
        string[] Args(string alpha, string checkpoints) =>
            ["demo", "--epochs", "1", "--checkpoint-every", "10", "--alpha", alpha, "--out", outDir, "--checkpoint-dir", checkpoints];
        using var first = CliProcess.Start(VerySlowCheckpoints, Args("8", _dir.File("ck-first")));
        await first.WaitUntilAsync(() => Directory.GetDirectories(_dir.File(Path.Combine("ck-first", "seed-123", "full")), "checkpoint-*").Length > 0,
            Timeout, "the first run's fine-tuning");

        // Its own checkpoint folder, so only the lock on --out can stop it.
        var second = await CliProcess.RunAsync(null, Timeout, Args("16", _dir.File("ck-second")));
        Assert.True(second.ExitCode == 2, $"exit {second.ExitCode}: {second.Error}");
        Assert.Contains($"--out '{outDir}' is in use by another dora run", second.Error);
        Assert.Single(second.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));

        var (code, _, error) = await first.WaitForExitAsync(Timeout);
        Assert.True(code == 0, error);
        var results = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")))!;
        Assert.All(results["methods"]!.AsArray().Where(m => m!["alpha"] is not null), m => Assert.Equal(8.0, (double)m!["alpha"]!));
        foreach (var adapter in new[] { "lora-r4", "dora-r4" })
        {
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "adapters", adapter, "adapter_config.json")))!;
            Assert.Equal(8.0, (double)config["lora_alpha"]!);
        }
    }

    [Fact]
    public async Task A_second_run_into_the_same_checkpoint_folder_is_refused()
    {
        var checkpoints = _dir.File("ck");
        using var first = CliProcess.Start(VerySlowCheckpoints, "demo", "--epochs", "1", "--checkpoint-every", "10", "--out", _dir.File("out1"), "--checkpoint-dir", checkpoints);
        await first.WaitUntilAsync(() => Directory.GetDirectories(Path.Combine(checkpoints, "seed-123", "full"), "checkpoint-*").Length > 0,
            Timeout, "the first run's fine-tuning");

        var (code, error, _) = CliRunner.Run("demo", "--epochs", "1", "--checkpoint-every", "10", "--out", _dir.File("out2"), "--checkpoint-dir", checkpoints, "--resume");
        Assert.Equal(2, code);
        Assert.Contains($"--checkpoint-dir '{checkpoints}' is in use by another dora run", error);
        Assert.False(File.Exists(_dir.File(Path.Combine("out2", "results.json"))));

        var finished = await first.WaitForExitAsync(Timeout);
        Assert.True(finished.ExitCode == 0, finished.Error);
    }

    [Fact]
    public async Task A_killed_run_leaves_no_lock_behind()
    {
        var outDir = _dir.File("out");
        using (var run = CliProcess.Start(SlowCheckpoints, "demo", "--out", outDir))
        {
            await run.WaitUntilAsync(() => Directory.Exists(Path.Combine(outDir, "checkpoints", "seed-123")), Timeout, "checkpoints");
            run.Signal(CliProcess.SIGKILL);
            var (code, _, _) = await run.WaitForExitAsync(Timeout);
            Assert.Equal(128 + CliProcess.SIGKILL, code);
        }
        Assert.True(File.Exists(Path.Combine(outDir, FolderLock.FileName)), "the lock file stays (see FolderLock), unlocked");
        using (FolderLock.Acquire("--out", outDir)) { }
        using (FolderLock.Acquire("--checkpoint-dir", Path.Combine(outDir, "checkpoints"))) { }
    }
}
