using DoraSharp.Cli;
using DoraSharp.Examples.Experiments;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// Where `dora demo` cannot write, it says so before training; a failure while writing its outputs (a full disk at the
/// plot, say) leaves --out exactly as it was, keeps the checkpoints, and --resume then writes the whole new set.
/// </summary>
[Collection(ProcessWideState.Name)]
public sealed class OutputFailureTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_checkpoint_folder_that_cannot_be_created_is_refused_before_training()
    {
        var file = _dir.File("a-file");
        File.WriteAllText(file, "not a folder");
        var checkpoints = Path.Combine(file, "checkpoints");
        var (code, error, _) = CliRunner.Run("demo", "--out", _dir.File("out"), "--checkpoint-dir", checkpoints);
        Assert.Equal(2, code);
        Assert.StartsWith($"dora: --checkpoint-dir '{checkpoints}': cannot create the folder", error);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [NotRootFact]
    public void A_read_only_checkpoint_folder_is_refused_before_training()
    {
        var checkpoints = _dir.File("read-only");
        Directory.CreateDirectory(checkpoints);
        File.SetUnixFileMode(checkpoints, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            var (code, error, _) = CliRunner.Run("demo", "--out", _dir.File("out"), "--checkpoint-dir", checkpoints);
            Assert.Equal(2, code);
            Assert.StartsWith($"dora: --checkpoint-dir '{checkpoints}' is not writable", error);
            Assert.False(File.Exists(_dir.File(Path.Combine("out", "results.json"))));
        }
        finally
        {
            File.SetUnixFileMode(checkpoints, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Theory]
    [InlineData("render", 1)]     // the plot: a full disk while drawing loss_curves.png
    [InlineData("staged", 1)]     // everything staged, nothing swapped yet
    [InlineData("swapping", 6)]   // half of the swap done: it is undone
    public void A_failure_while_writing_the_outputs_leaves_out_as_it_was_and_keeps_the_checkpoints(string step, int occurrence)
    {
        var outDir = _dir.File("out");
        var older = PlantOlderRun(outDir);
        string[] args = ["demo", "--epochs", "1", "--out", outDir];

        var seen = 0;
        RunOutputs.FaultHook.Value = s =>
        {
            if (s == step && ++seen == occurrence) throw new IOException("No space left on device");
        };
        int code;
        string error;
        try
        {
            (code, error, _) = CliRunner.Run(args);
        }
        finally
        {
            RunOutputs.FaultHook.Value = null;
        }
        Assert.Equal(2, code);
        Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("No space left on device", error);
        Assert.Contains("--resume", error);
        // Nothing new, nothing lost, nothing left over; the finished training is still there to publish.
        Assert.Equal(older, Snapshot(outDir));
        Assert.True(ExperimentCheckpoints.HoldsRun(Path.Combine(outDir, "checkpoints")), "checkpoints kept");

        (code, error, _) = CliRunner.Run([.. args, "--resume"]);
        Assert.True(code == 0, error);
        var written = Snapshot(outDir);
        Assert.Equal(["adapters/dora-r4/adapter_config.json", "adapters/dora-r4/adapter_model.safetensors",
                      "adapters/lora-r4/adapter_config.json", "adapters/lora-r4/adapter_model.safetensors",
                      "base/config.json", "base/model.safetensors", "loss_curves.png", "losses.csv", "results.json"],
            written.Keys.Select(k => k.Replace(Path.DirectorySeparatorChar, '/')));
        Assert.DoesNotContain(written, kv => older.TryGetValue(kv.Key, out var old) && old == kv.Value);
        Assert.False(ExperimentCheckpoints.HoldsRun(Path.Combine(outDir, "checkpoints")), "checkpoints deleted once the outputs are in place");
    }

    /// <summary>An older run's outputs; returns their snapshot.</summary>
    private static SortedDictionary<string, string> PlantOlderRun(string outDir)
    {
        Directory.CreateDirectory(Path.Combine(outDir, "adapters", "lora-r4"));
        Directory.CreateDirectory(Path.Combine(outDir, "adapters", "lora-r8"));
        File.WriteAllText(Path.Combine(outDir, "results.json"), "{\"from\": \"an older run\"}");
        File.WriteAllText(Path.Combine(outDir, "losses.csv"), "phase,seed,step,loss\n");
        File.WriteAllText(Path.Combine(outDir, "loss_curves.png"), "an older run's plot");
        File.WriteAllText(Path.Combine(outDir, "adapters", "lora-r4", "adapter_model.safetensors"), "an older run's adapter");
        File.WriteAllText(Path.Combine(outDir, "adapters", "lora-r8", "adapter_model.safetensors"), "an older run's other adapter");
        return Snapshot(outDir);
    }

    /// <summary>Every file under --out (lock files and checkpoints aside) with its content as hex, hidden leftovers included.</summary>
    private static SortedDictionary<string, string> Snapshot(string outDir) =>
        new(Directory.EnumerateFiles(outDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(outDir, f))
            .Where(f => !f.StartsWith("checkpoints" + Path.DirectorySeparatorChar, StringComparison.Ordinal) && Path.GetFileName(f) != FolderLock.FileName)
            .ToDictionary(f => f, f => Convert.ToHexString(File.ReadAllBytes(Path.Combine(outDir, f)))), StringComparer.Ordinal);
}

/// <summary>A fact that needs file permissions to bite: skipped, with the reason, when the tests run as root.</summary>
public sealed class NotRootFactAttribute : FactAttribute
{
    public NotRootFactAttribute()
    {
        if (Environment.IsPrivilegedProcess) Skip = "runs as root, which may write into a read-only folder; the file-in-the-way case covers it";
    }
}
