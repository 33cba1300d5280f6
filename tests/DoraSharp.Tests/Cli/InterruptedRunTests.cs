using System.Text.Json.Nodes;
using DoraSharp.Cli;
using DoraSharp.Tests.IO;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// Real processes, real SIGTERMs (what kill, timeout, systemd and docker stop send): `dora demo` and `dora compare`
/// stop after their current step with a checkpoint, exit 143 saying how to resume, and `--resume` ends with the
/// results of a run never stopped (every number of results.json but the times, and losses.csv byte for byte).
/// </summary>
public sealed class InterruptedRunTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(1);

    /// <summary>Slower checkpoint writes widen the window in which the signal lands mid-training (the runs take about a second).</summary>
    private static readonly Dictionary<string, string> SlowCheckpoints = new() { [CheckpointFaultDelay.Variable] = "10" };

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Sigterm_stops_the_demo_with_a_checkpoint_and_resume_gives_the_uninterrupted_results()
    {
        string[] Args(string name) => ["demo", "--epochs", "2", "--checkpoint-every", "20", "--out", _dir.File(name)];
        // Signalled once the first fine-tuning phase has a checkpoint: pretraining (and the frozen base) are finished by then.
        await StopAndResume(Args, "full");
    }

    [Fact]
    public async Task Compare_resumed_after_sigterm_gives_the_uninterrupted_results()
    {
        string[] Args(string name) => ["compare", "--ranks", "1,2", "--epochs", "1", "--checkpoint-every", "20", "--out", _dir.File(name)];
        // Signalled during rank 1: full fine-tuning is finished, so the resumed run skips it and continues the rest.
        await StopAndResume(Args, "lora-r1");
    }

    private async Task StopAndResume(Func<string, string[]> args, string phaseToInterrupt)
    {
        var reference = await CliProcess.RunAsync(null, Timeout, args("reference"));
        Assert.True(reference.ExitCode == 0, reference.Error);

        var checkpoints = _dir.File(Path.Combine("stopped", "checkpoints"));
        var seed = Path.Combine(checkpoints, "seed-123");
        using (var run = CliProcess.Start(SlowCheckpoints, args("stopped")))
        {
            await run.WaitUntilAsync(() => Directory.GetDirectories(Path.Combine(seed, phaseToInterrupt), "checkpoint-*").Length > 0,
                Timeout, $"checkpoint in {phaseToInterrupt}");
            run.Signal(CliProcess.SIGTERM);
            var (code, _, error) = await run.WaitForExitAsync(Timeout);
            Assert.True(code == 143, $"exit {code}: {error}");
            Assert.Equal($"dora: stopped (SIGTERM); every finished step is checkpointed in {checkpoints}. " +
                         "To continue, run the same command again with --resume.", error.TrimEnd());
        }
        Assert.True(File.Exists(Path.Combine(seed, "pretraining", "phase.json")), "pretraining recorded as finished");
        var saved = Directory.GetDirectories(seed, "checkpoint-*", SearchOption.AllDirectories);
        Assert.NotEmpty(saved);
        foreach (var checkpoint in saved) CheckpointStore.Verify(checkpoint);
        Assert.False(File.Exists(_dir.File(Path.Combine("stopped", "results.json"))), "no results before the run is finished");

        var resumed = await CliProcess.RunAsync(null, Timeout, [.. args("stopped"), "--resume"]);
        Assert.True(resumed.ExitCode == 0, resumed.Error);

        Assert.Equal(Results("reference"), Results("stopped"));
        Assert.Equal(File.ReadAllBytes(_dir.File(Path.Combine("reference", "losses.csv"))), File.ReadAllBytes(_dir.File(Path.Combine("stopped", "losses.csv"))));
        Assert.False(Directory.Exists(seed), "the finished run deletes its checkpoints");
    }

    /// <summary>results.json without what differs between any two runs: the creation time and the training times.</summary>
    private string Results(string name)
    {
        var json = JsonNode.Parse(File.ReadAllText(_dir.File(Path.Combine(name, "results.json"))))!.AsObject();
        json.Remove("created_utc");
        json["pretraining"]!.AsObject().Remove("train_seconds");
        foreach (var method in json["methods"]!.AsArray()) method!.AsObject().Remove("train_seconds");
        return json.ToJsonString();
    }
}
