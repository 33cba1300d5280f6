using System.Diagnostics;
using DoraSharp.Cli;
using DoraSharp.IO;
using DoraSharp.Training;
using Xunit;
using Xunit.Abstractions;

namespace DoraSharp.Tests.Training;

/// <summary>
/// Real processes, real SIGKILLs: `dora train-fixture` is killed at random moments (checkpoint writes slowed so
/// kills also land inside them) and resumed until it finishes; after every kill each complete checkpoint must
/// verify and load, and the final adapter must be byte-identical to an uninterrupted run's.
/// DORASHARP_FAULT_KILLS sets the number of kills (default 6, under a minute; e.g. 50 for a long manual run).
/// </summary>
public sealed class FaultInjectionTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "dora-fault-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public async Task Killed_runs_resume_to_the_uninterrupted_adapter_and_no_checkpoint_is_ever_damaged()
    {
        var kills = int.TryParse(Environment.GetEnvironmentVariable("DORASHARP_FAULT_KILLS"), out var k) && k > 0 ? k : 6;
        var seed = Environment.TickCount;
        var random = new Random(seed);
        output.WriteLine($"random seed {seed}, {kills} kills wanted");

        var clock = Stopwatch.StartNew();
        var reference = await RunToEnd("reference", null);
        var training = clock.Elapsed;   // an upper bound of the training part; kills are drawn within it
        var referenceAdapter = File.ReadAllBytes(Path.Combine(reference, "out", AdapterFiles.TensorsFileName));

        var dir = Path.Combine(_root, "killed");
        var survived = 0;
        var midWrite = 0;
        var attempts = 0;
        var startup = TimeSpan.Zero;
        while (survived < kills)
        {
            Assert.True(++attempts < kills * 4 + 10, $"only {survived} kills landed in {attempts} attempts");
            var delay = random.Next(0, 3) == 0 ? 0 : random.Next(5, 40);   // ms between checkpoint files
            using var process = Start(dir, delay);
            // Start-up (runtime, libtorch, data) takes most of a run: time the kill from the first line, printed as training starts.
            var first = await process.StandardOutput.ReadLineAsync();
            Assert.StartsWith("training from step", first);
            var killAfter = TimeSpan.FromMilliseconds(random.Next(0, (int)training.TotalMilliseconds / 2 + 1));
            var exited = await WaitAsync(process, killAfter);
            if (exited)
            {
                Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}: {await process.StandardError.ReadToEndAsync()}");
                Directory.Delete(Path.Combine(dir, "out"), recursive: true);   // finished before the kill: start over
                Directory.Delete(Path.Combine(dir, "ck"), recursive: true);
                continue;
            }
            process.Kill();   // SIGKILL: no handler runs, nothing is flushed
            await process.WaitForExitAsync();
            survived++;
            var complete = CheckAllCheckpoints(Path.Combine(dir, "ck"));
            // A leftover .tmp- directory means the kill landed inside a checkpoint write (or a deletion of an old one).
            var partial = Directory.Exists(Path.Combine(dir, "ck")) ? Directory.GetDirectories(Path.Combine(dir, "ck"), ".tmp-*").Length : 0;
            if (partial > 0) midWrite++;
            output.WriteLine($"kill {survived} {killAfter.TotalMilliseconds} ms after '{first}' (checkpoint delay {delay} ms): {complete} complete checkpoints, all verified" +
                             (partial > 0 ? $"; {partial} partial .tmp- directory left by the kill" : ""));
        }
        await RunToEnd("killed", null);
        var resumed = File.ReadAllBytes(Path.Combine(dir, "out", AdapterFiles.TensorsFileName));
        output.WriteLine($"{survived} kills survived in {attempts} attempts ({midWrite} inside a checkpoint write); final adapter {(resumed.AsSpan().SequenceEqual(referenceAdapter) ? "byte-identical to" : "DIFFERENT from")} the uninterrupted run's");
        Assert.Equal(referenceAdapter, resumed);
        Assert.Empty(Directory.GetDirectories(Path.Combine(dir, "ck"), ".tmp-*"));
    }

    private static int CheckAllCheckpoints(string dir)
    {
        var store = new CheckpointStore(new CheckpointOptions { Directory = dir });
        foreach (var checkpoint in store.List())
        {
            CheckpointStore.Verify(checkpoint);
            using var content = SafetensorsFile.Read(Path.Combine(checkpoint, CheckpointStore.StateFile));
            Assert.NotEmpty(content.Tensors);
        }
        return store.List().Count;
    }

    private async Task<string> RunToEnd(string name, int? delay)
    {
        var dir = Path.Combine(_root, name);
        using var process = Start(dir, delay ?? 0);
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        output.WriteLine($"{name}: {(await stdout).Trim().ReplaceLineEndings(" / ")}");
        Assert.True(process.ExitCode == 0, $"{name}: exit {process.ExitCode}: {await stderr}");
        return dir;
    }

    private static Process Start(string dir, int delayMs)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "dora.dll");
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in new[] { dll, "train-fixture", "--checkpoint-dir", Path.Combine(dir, "ck"), "--out", Path.Combine(dir, "out"), "--checkpoint-every", "7", "--keep", "2" })
            start.ArgumentList.Add(a);
        start.Environment[CheckpointFaultDelay.Variable] = delayMs.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return Process.Start(start)!;
    }

    /// <summary>True when the process exited by itself within <paramref name="time"/>.</summary>
    private static async Task<bool> WaitAsync(Process process, TimeSpan time)
    {
        using var timeout = new CancellationTokenSource(time);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
