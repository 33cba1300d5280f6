using System.Diagnostics;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// Times the variants of one workload (shape, r) in interleaved rounds — base, LoRA, DoRA, DoRA-reference,
/// base, LoRA, … — so a drift in machine speed hits all variants alike and the ratios hold.
/// </summary>
internal static class LayerBenchmark
{
    public static List<BenchRecord> Run(string shape, int r, int tokens, int warmup, int steps, bool memory, Action<string>? status = null)
    {
        var workloads = Variants.All.ToDictionary(v => v, v => BenchWorkload.Create(shape, r, tokens, v));
        var records = new List<BenchRecord>();
        try
        {
            foreach (var phase in new[] { Phases.Train, Phases.Infer, Phases.InferMerged })
            {
                var variants = phase == Phases.InferMerged ? Variants.All.Where(v => v != Variants.Base).ToArray() : Variants.All;
                status?.Invoke($"{shape} r={r} {phase}");
                foreach (var v in variants) workloads[v].Enter(phase);
                var times = variants.ToDictionary(v => v, _ => new List<double>());
                for (var round = -warmup; round < steps; round++)
                    foreach (var v in variants)
                    {
                        var watch = Stopwatch.StartNew();
                        workloads[v].Run(phase);
                        if (round >= 0) times[v].Add(watch.Elapsed.TotalMilliseconds);
                    }
                foreach (var v in variants)
                {
                    (double? Peak, double? Step) mem = (null, null);
                    if (memory && phase == Phases.Train)
                    {
                        status?.Invoke($"{shape} r={r} peak memory of {v}");
                        mem = MemoryProbe.Measure(shape, r, tokens, v);
                    }
                    records.Add(new BenchRecord(shape, r, tokens, v, phase, Median(times[v]), times[v].Min(), mem.Peak, mem.Step));
                }
            }
        }
        finally
        {
            foreach (var w in workloads.Values) w.Dispose();
        }
        return records;
    }

    internal static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
