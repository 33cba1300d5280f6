using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DoraSharp.Cli.Bench;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora bench`: base / LoRA / DoRA / PEFT-equivalent DoRA training steps and inference, merged and
/// unmerged, on the issue's layer shapes and the demo MLP, in one run, with the ratios that matter.
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var shapes = new Option<string>("--shapes")
        {
            Description = $"Comma-separated OUTxIN layer shapes, and/or 'mlp' (the demo MLP, batch --mlp-batch). Allowed: each side 1 to {MaxSide}.",
            DefaultValueFactory = _ => "1024x1024,2048x2048,4096x1024,mlp",
            Validators =
            {
                r =>
                {
                    var list = Split(r.GetValueOrDefault<string>() ?? "");
                    if (list.Length == 0) r.AddError("--shapes needs at least one OUTxIN shape or 'mlp' (got '').");
                    foreach (var s in list)
                    {
                        if (s == "mlp" || BenchWorkload.TryParseShape(s, MaxSide, out _)) continue;
                        r.AddError($"--shapes: '{s}' is not OUTxIN with each side 1 to {MaxSide} (e.g. 2048x2048) or 'mlp'.");
                        return;
                    }
                },
            },
        };
        var ranks = new Option<int[]>("--ranks")
        {
            Description = $"Comma-separated ranks r. Allowed: up to 16 distinct ranks, each 1 to {MaxRank}.",
            HelpName = "R1,R2,…",
            DefaultValueFactory = _ => [8, 16, 64],
            CustomParser = r => r.Tokens.Count == 0 ? [8, 16, 64] : OptionRules.ParseWholeList(r, "--ranks", r.Tokens[^1].Value, 1, MaxRank, 16, "8,16,64") ?? [],
        };
        var tokens = OptionRules.Whole("--tokens", 512, 1, 65536, "Tokens (rows) per batch for the layer shapes.");
        var mlpBatch = OptionRules.Whole("--mlp-batch", 64, 1, 65536, "Batch size for the demo MLP.");
        var steps = OptionRules.Whole("--steps", 20, 1, 100_000, "Timed steps per variant and phase (after warm-up).");
        var warmup = OptionRules.Whole("--warmup", 3, 0, 100_000, "Untimed warm-up steps.");
        var threads = OptionRules.Whole("--threads", 2, 1, 256, "libtorch intra-op threads.");
        var noMemory = new Option<bool>("--no-memory") { Description = "Skip the peak-memory probes (one child process per variant)." };
        var memoryRanks = new Option<string>("--memory-ranks")
        {
            Description = $"Ranks at which peak memory is probed (each probe is a child process, ~1.5 s): comma-separated, or 'all'. Allowed: ranks 1 to {MaxRank}.",
            DefaultValueFactory = _ => "16",
            Validators = { r => { if (r.GetValueOrDefault<string>() is { } v && v.Trim() != "all") OptionRules.ParseWholeList(r, "--memory-ranks", v, 1, MaxRank, 16, "16 or all"); } },
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON array of records instead of tables." };
        var probe = new Option<string[]>(MemoryProbe.ProbeOption) { Hidden = true, AllowMultipleArgumentsPerToken = true, Arity = new ArgumentArity(4, 4) };
        var inference = new Option<bool>("--inference") { Description = "Inference of a `dora train` run (--run): sentences/s at each --infer-batches size for TorchSharp with the adapter unmerged, merged, and ONNX Runtime on the exported model." };
        var run = new Option<string?>("--run") { Description = "With --inference: a LoRA or DoRA run folder written by `dora train`.", HelpName = "DIR" };
        var command = new Command("bench", "Time base, LoRA and DoRA training steps and inference; print the ratios.")
            { shapes, ranks, tokens, mlpBatch, steps, warmup, threads, noMemory, memoryRanks, json, probe, inference, run };
        var minilm = new MiniLmBenchOptions();
        foreach (var option in minilm.All) command.Options.Add(option);
        command.SetAction(p =>
        {
            if (p.GetValue(probe) is { Length: 4 } a)
            {
                // The parent's own arguments, but checked all the same: a hand-typed probe must not crash either.
                // A MiniLM probe (bench --model minilm) names its shape minilm-bBxT and one of MiniLmVariants.Training.
                var isMiniLm = a[0].StartsWith(MiniLmWorkload.ShapePrefix, StringComparison.Ordinal);
                if ((isMiniLm ? !MiniLmWorkload.TryParseShape(a[0], out _) : !BenchWorkload.TryParseShape(a[0], MaxSide, out _) && a[0] != "mlp")
                    || !int.TryParse(a[1], NumberStyles.None, CultureInfo.InvariantCulture, out var r) || r < 1 || r > MaxRank
                    || !int.TryParse(a[2], NumberStyles.None, CultureInfo.InvariantCulture, out var n) || n < 1 || n > 65536
                    || !(isMiniLm ? MiniLmVariants.Training : Variants.All).Contains(a[3]))
                    throw new UsageException($"{MemoryProbe.ProbeOption}: expected SHAPE R TOKENS VARIANT (a shape, a rank 1 to {MaxRank}, 1 to 65536 tokens, one of {string.Join(", ", Variants.All)}, or a MiniLM shape and one of {string.Join(", ", MiniLmVariants.Training)}), got '{string.Join(' ', a)}'.");
                return MemoryProbe.RunChild(a[0], r, n, a[3]);
            }
            if (p.GetValue(inference))
                return InferenceBench.Run(p, p.GetValue(run), minilm, steps, warmup, p.GetValue(threads), p.GetValue(json));
            if (p.GetValue(run) is not null) throw new UsageException("--run is read by --inference only; add --inference.");
            if (minilm.Selected(p))
                return minilm.Run(p, shapes, steps, warmup, p.GetValue(threads), !p.GetValue(noMemory), p.GetValue(json));
            var memoryRankList = p.GetValue(memoryRanks)!.Trim();
            return Run([.. Split(p.GetValue(shapes)!)], p.GetValue(ranks)!, p.GetValue(tokens), p.GetValue(mlpBatch), p.GetValue(steps), p.GetValue(warmup),
                p.GetValue(threads), !p.GetValue(noMemory), memoryRankList == "all" ? null : [.. Split(memoryRankList).Select(x => int.Parse(x, CultureInfo.InvariantCulture))], p.GetValue(json));
        });
        return command;
    }

    /// <summary>Largest side of a benchmarked layer (a 16384×16384 float32 weight is 1 GiB).</summary>
    private const int MaxSide = 16384;

    /// <summary>Largest benchmarked rank.</summary>
    private const int MaxRank = 4096;

    private static string[] Split(string list) => list.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <param name="memoryRankList">Ranks to probe memory at; null for all.</param>
    private static int Run(string[] shapes, int[] ranks, int tokens, int mlpBatch, int steps, int warmup, int threads, bool memory, int[]? memoryRankList, bool json)
    {
        var memoryRanks = memoryRankList ?? ranks;
        TorchSharp.torch.set_num_threads(threads);

        var records = new List<BenchRecord>();
        var started = DateTime.UtcNow;
        void Measure(Action<string>? status)
        {
            foreach (var shape in shapes)
                foreach (var r in ranks)
                    records.AddRange(LayerBenchmark.Run(shape, r, shape == "mlp" ? mlpBatch : tokens, warmup, steps, memory && memoryRanks.Contains(r), status));
        }
        if (json)
        {
            Measure(null);
            Console.WriteLine(JsonSerializer.Serialize(records, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        // Pipes and files have no width (Spectre would wrap the tables at 80 columns) and no use for a spinner.
        if (Console.IsOutputRedirected)
        {
            if (AnsiConsole.Profile.Width < 160) AnsiConsole.Profile.Width = 160;
            Measure(null);
        }
        else
        {
            AnsiConsole.Status().Start("benchmarking", ctx => Measure(s => ctx.Status($"benchmarking {s}")));
        }
        Render(records, threads, steps, memory);
        AnsiConsole.MarkupLine($"[grey]{records.Count} measurements in {(DateTime.UtcNow - started).TotalSeconds:F0} s; medians of {steps} steps after {warmup} warm-up, variants interleaved; " +
                               (memory ? "peak RSS = the whole peak resident memory of a fresh child process training that variant (warm-up + 3 steps); step MB = that peak above the RSS just before the 3 timed steps (the step's own activations and temporaries).[/]" : "no memory probes.[/]"));
        return 0;
    }

    private static void Render(List<BenchRecord> records, int threads, int steps, bool memory)
    {
        var table = new Table().Title($"[bold]dora bench[/] ({threads} threads, float32)")
            .AddColumns("shape", "r", "variant", "train ms (min)", "infer ms", "merged ms", "peak RSS MB", "step MB");
        foreach (var group in records.GroupBy(x => (x.Shape, x.R)))
        {
            foreach (var v in Variants.All)
            {
                BenchRecord? Get(string phase) => group.FirstOrDefault(x => x.Variant == v && x.Phase == phase);
                var train = Get(Phases.Train)!;
                table.AddRow(group.Key.Shape, group.Key.R.ToString(CultureInfo.InvariantCulture), v,
                    $"{train.MedianMs:F2} ({train.MinMs:F2})", $"{Get(Phases.Infer)!.MedianMs:F2}",
                    Get(Phases.InferMerged) is { } m ? $"{m.MedianMs:F2}" : "–",
                    train.PeakMb is { } p ? $"{p:F1}" : "–", train.StepMb is { } sm ? $"{sm:F1}" : "–");
            }
            table.AddEmptyRow();
        }
        AnsiConsole.Write(table);

        var ratios = new Table().Title("[bold]Ratios[/] (medians; target in brackets)")
            .AddColumns("shape", "r", "DoRA/LoRA train [[≤1.10]]", "DoRA/base train [[≤1.25]]", "PEFT-path/DoRA train",
                "DoRA/LoRA infer [[≤1.05]]", "merged DoRA/base infer [[≤1.02]]", "DoRA/LoRA peak RSS [[≤1.05]]", "step memory DoRA − LoRA (MB)");
        foreach (var group in records.GroupBy(x => (x.Shape, x.R)))
        {
            double T(string v, string phase) => group.First(x => x.Variant == v && x.Phase == phase).MedianMs;
            double? P(string v) => group.First(x => x.Variant == v && x.Phase == Phases.Train).PeakMb;
            double? S(string v) => group.First(x => x.Variant == v && x.Phase == Phases.Train).StepMb;
            var peakRatio = P(Variants.Dora) is { } d && P(Variants.Lora) is { } l ? Ratio(d / l, 1.05) : "–";
            var stepGap = S(Variants.Dora) is { } ds && S(Variants.Lora) is { } ls ? $"{ds - ls:+0.0;-0.0} ({ls:F1} → {ds:F1})" : "–";
            ratios.AddRow(group.Key.Shape, group.Key.R.ToString(CultureInfo.InvariantCulture),
                Ratio(T(Variants.Dora, Phases.Train) / T(Variants.Lora, Phases.Train), 1.10),
                Ratio(T(Variants.Dora, Phases.Train) / T(Variants.Base, Phases.Train), 1.25),
                $"{T(Variants.DoraReference, Phases.Train) / T(Variants.Dora, Phases.Train):F2}×",
                Ratio(T(Variants.Dora, Phases.Infer) / T(Variants.Lora, Phases.Infer), 1.05),
                Ratio(T(Variants.Dora, Phases.InferMerged) / T(Variants.Base, Phases.Infer), 1.02),
                peakRatio, stepGap);
        }
        AnsiConsole.Write(ratios);
    }

    private static string Ratio(double value, double target)
        => value <= target ? $"[green]{value:F3}[/]" : $"[yellow]{value:F3}[/]";
}
