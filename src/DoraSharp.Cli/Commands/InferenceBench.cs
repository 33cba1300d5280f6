using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DoraSharp.Cli.Bench;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora bench --inference --run RUN` (issue 18): parses the shared bench options for <see cref="InferenceBenchmark"/>
/// and renders its sentences/s and the ratios that decide how to deploy (merge? ONNX Runtime?).
/// </summary>
internal static class InferenceBench
{
    public static int Run(ParseResult p, string? run, MiniLmBenchOptions minilm, Option<int> stepsOption, Option<int> warmupOption, int threads, bool json)
    {
        if (run is null) throw new UsageException("--inference needs --run: a LoRA or DoRA run folder written by `dora train` (see docs/own-data.md).");
        bool Given(Option o) => p.GetResult(o) is { Implicit: false };
        var quick = p.GetValue(minilm.Quick);
        var steps = Given(stepsOption) ? p.GetValue(stepsOption) : quick ? 2 : 10;
        var warmup = Given(warmupOption) ? p.GetValue(warmupOption) : quick ? 1 : 2;
        var tokens = quick && !Given(minilm.InferTokens) ? 16 : p.GetValue(minilm.InferTokens);
        var batchList = Given(minilm.InferBatches) ? p.GetValue(minilm.InferBatches)! : quick ? "1,2" : MiniLmBenchmark.DefaultInferBatches;
        var batches = batchList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b is >= 1 and <= 4096 ? b
                : throw new UsageException($"--infer-batches: '{x}' is not a whole number from 1 to 4096.")).Distinct().ToList();
        if (batches.Count == 0) throw new UsageException("--infer-batches: give at least one batch size (e.g. 1,32).");

        var started = DateTime.UtcNow;
        List<BenchRecord> records = [];
        if (json || Console.IsOutputRedirected)
            records = InferenceBenchmark.Run(run, batches, tokens, warmup, steps, threads, null);
        else
            AnsiConsole.Status().Start("benchmarking", ctx => records = InferenceBenchmark.Run(run, batches, tokens, warmup, steps, threads, s => ctx.Status($"benchmarking {s}")));
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(records, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        if (AnsiConsole.Profile.Width < 120) AnsiConsole.Profile.Width = 120;
        string F(double v, string f) => v.ToString(f, CultureInfo.InvariantCulture);
        var table = new Table().Title($"[bold]dora bench --inference[/] {Markup.Escape(run)} ({threads} thread{(threads == 1 ? "" : "s")}, float32, texts in, outputs out)")
            .AddColumns("batch x tokens", "engine", "median ms per batch (min)", "sentences/s");
        foreach (var group in records.GroupBy(r => r.Shape))
        {
            foreach (var r in group)
                table.AddRow(r.Shape, r.Variant, $"{F(r.MedianMs, "F1")} ({F(r.MinMs, "F1")})", F(r.SentencesPerSecond ?? 0, "F1"));
            table.AddEmptyRow();
        }
        AnsiConsole.Write(table);
        var ratios = new Table().Title("[bold]Ratios[/] (sentences/s; > 1 means the first is faster)")
            .AddColumns("batch x tokens", "merged ÷ unmerged (TorchSharp)", "ONNX Runtime ÷ TorchSharp merged", "ONNX Runtime ÷ TorchSharp unmerged");
        foreach (var group in records.GroupBy(r => r.Shape))
        {
            double S(string engine) => group.First(r => r.Variant == engine).SentencesPerSecond ?? double.NaN;
            ratios.AddRow(group.Key,
                F(S(InferenceBenchmark.Merged) / S(InferenceBenchmark.Unmerged), "F2") + "×",
                F(S(InferenceBenchmark.OnnxRuntime) / S(InferenceBenchmark.Merged), "F2") + "×",
                F(S(InferenceBenchmark.OnnxRuntime) / S(InferenceBenchmark.Unmerged), "F2") + "×");
        }
        AnsiConsole.Write(ratios);
        AnsiConsole.MarkupLine(Markup.Escape($"{records.Count} measurements in {(DateTime.UtcNow - started).TotalSeconds:F0} s; medians of {steps} steps after {warmup} warm-up, engines interleaved step by step; " +
                                             "tokenization included for all three; ONNX Runtime runs the model `dora export` writes, through DoraSharp.Onnx."));
        return 0;
    }
}
