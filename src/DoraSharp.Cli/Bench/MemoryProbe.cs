using System.Diagnostics;
using System.Globalization;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// Peak memory of a variant's training, measured as process peak RSS (VmHWM) in a fresh child process, so
/// that no variant inherits another's allocator state. The child builds the workload, runs one warm-up
/// step (Adam creates its state there) and three more steps. It reports the whole peak, and the peak
/// during the three steps above the RSS just before them (the kernel's peak counter is reset there with
/// /proc/self/clear_refs "5"): the memory a step needs beyond model, inputs and optimizer state.
/// glibc's mmap threshold is pinned so large temporaries are returned to the kernel when freed and each
/// step's peak is seen afresh.
/// </summary>
internal static class MemoryProbe
{
    public const string ProbeOption = "--probe-memory";

    /// <summary>The child's libtorch thread count, as the parent measured with.</summary>
    private const string ThreadsVariable = "DORASHARP_BENCH_THREADS";

    /// <summary>Runs the child and returns (whole peak, step peak) in MB, or nulls where /proc is unavailable.</summary>
    public static (double? Peak, double? Step) Measure(string shape, int r, int tokens, string variant, int threads = 2)
    {
        if (!File.Exists("/proc/self/clear_refs")) return (null, null);
        var start = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (!Path.GetFileNameWithoutExtension(Environment.ProcessPath!).Equals("dora", StringComparison.Ordinal))
            start.ArgumentList.Add(typeof(MemoryProbe).Assembly.Location);
        foreach (var a in new[] { "bench", ProbeOption, shape, r.ToString(CultureInfo.InvariantCulture), tokens.ToString(CultureInfo.InvariantCulture), variant })
            start.ArgumentList.Add(a);
        start.Environment["MALLOC_MMAP_THRESHOLD_"] = "131072";
        start.Environment[ThreadsVariable] = threads.ToString(CultureInfo.InvariantCulture);
        using var child = Process.Start(start)!;
        var output = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        var parts = output.Trim().Split(' ');
        return child.ExitCode == 0 && parts.Length == 2
               && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var peak)
               && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var step)
            ? (peak, step) : (null, null);
    }

    /// <summary>The child's side: prints "wholePeakMB stepPeakMB".</summary>
    public static int RunChild(string shape, int r, int tokens, string variant)
    {
        TorchSharp.torch.set_num_threads(int.TryParse(Environment.GetEnvironmentVariable(ThreadsVariable), out var threads) && threads > 0 ? threads : 2);
        using IBenchWorkload workload = shape.StartsWith(MiniLmWorkload.ShapePrefix, StringComparison.Ordinal)
            ? MiniLmWorkload.Create(MiniLmWorkload.ParseShape(shape).Batch, tokens, variant)
            : BenchWorkload.Create(shape, r, tokens, variant);
        workload.Enter(Phases.Train);
        workload.Run(Phases.Train);
        var wholeBefore = StatusKb("VmHWM");
        File.WriteAllText("/proc/self/clear_refs", "5");
        var before = StatusKb("VmRSS");
        for (var i = 0; i < 3; i++) workload.Run(Phases.Train);
        var stepPeak = StatusKb("VmHWM");
        var whole = System.Math.Max(wholeBefore, stepPeak);
        Console.WriteLine(FormattableString.Invariant($"{whole / 1024.0:F2} {(stepPeak - before) / 1024.0:F2}"));
        return 0;
    }

    private static long StatusKb(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }
}
