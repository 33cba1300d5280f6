using System.Diagnostics;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// `dora bench --model minilm` (issue 15): frozen / LoRA / DoRA / full training steps of all-MiniLM-L6-v2 at each
/// batch × tokens shape, and inference throughput at each inference batch size; variants interleaved round by round,
/// medians, peak RSS of a fresh child process per training variant.
/// </summary>
internal static class MiniLmBenchmark
{
    /// <summary>The issue's shapes (batch × tokens) and inference batches.</summary>
    public const string DefaultShapes = "16x48,32x128", DefaultInferBatches = "1,32";
    public const int DefaultInferTokens = 48, DefaultSteps = 5, DefaultWarmup = 1;

    public static List<BenchRecord> Run(IReadOnlyList<(int Batch, int Tokens)> shapes, IReadOnlyList<int> inferBatches, int inferTokens,
        int warmup, int steps, bool memory, int threads, Action<string>? status)
    {
        var records = new List<BenchRecord>();
        foreach (var (batch, tokens) in shapes)
            records.AddRange(Measure(MiniLmWorkload.ShapeName(batch, tokens), batch, tokens, Phases.Train, MiniLmVariants.Training, warmup, steps, memory, threads, status));
        foreach (var batch in inferBatches)
            records.AddRange(Measure(MiniLmWorkload.ShapeName(batch, inferTokens), batch, inferTokens, Phases.Infer, MiniLmVariants.Inference, warmup, steps, false, threads, status));
        return records;
    }

    private static List<BenchRecord> Measure(string shape, int batch, int tokens, string phase, string[] variants,
        int warmup, int steps, bool memory, int threads, Action<string>? status)
    {
        status?.Invoke($"{shape} {phase}: loading");
        var workloads = new Dictionary<string, MiniLmWorkload>();
        var records = new List<BenchRecord>();
        try
        {
            foreach (var v in variants) workloads[v] = MiniLmWorkload.Create(batch, tokens, v);
            foreach (var w in workloads.Values) w.Enter(phase);
            var times = variants.ToDictionary(v => v, _ => new List<double>());
            for (var round = -warmup; round < steps; round++)
                foreach (var v in variants)
                {
                    status?.Invoke($"{shape} {phase} {v} ({(round < 0 ? "warm-up" : $"{round + 1}/{steps}")})");
                    var watch = Stopwatch.StartNew();
                    workloads[v].Run(phase);
                    if (round >= 0) times[v].Add(watch.Elapsed.TotalMilliseconds);
                }
            foreach (var v in variants)
            {
                (double? Peak, double? Step) mem = (null, null);
                if (memory)
                {
                    status?.Invoke($"{shape} peak memory of {v}");
                    mem = MemoryProbe.Measure(shape, MiniLmWorkload.Rank, tokens, v, threads);
                }
                var median = LayerBenchmark.Median(times[v]);
                records.Add(new BenchRecord(shape, MiniLmWorkload.Rank, tokens, v, phase, median, times[v].Min(), mem.Peak, mem.Step)
                {
                    SentencesPerSecond = phase == Phases.Infer ? batch / (median / 1000) : null,
                    Threads = threads,
                });
            }
        }
        finally
        {
            foreach (var w in workloads.Values) w.Dispose();
        }
        return records;
    }
}
