using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using DoraSharp.Cli.Bench;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora bench --model minilm` (issue 15): the options it adds to `dora bench` and its run. It shares --shapes (here
/// BATCHxTOKENS), --steps, --warmup, --threads, --no-memory and --json with the layer bench; --steps and --warmup
/// default to 5 and 1 here (a 32×128 full fine-tuning step takes seconds).
/// </summary>
internal sealed class MiniLmBenchOptions
{
    public Option<string> Model { get; } = OptionRules.Choice("--model", "layers",
        "What to time: 'layers' (single Linear layers and the demo MLP) or 'minilm' (all-MiniLM-L6-v2: frozen/LoRA/DoRA/full training steps and inference).",
        "layers", "minilm");

    public Option<string> InferBatches { get; } = new("--infer-batches")
    {
        Description = $"With --model minilm: comma-separated batch sizes for inference (sentences/s); '' (empty) times training only. Default {MiniLmBenchmark.DefaultInferBatches}.",
        DefaultValueFactory = _ => MiniLmBenchmark.DefaultInferBatches,
    };

    public Option<int> InferTokens { get; } = OptionRules.Whole("--infer-tokens", MiniLmBenchmark.DefaultInferTokens, 2, 512,
        $"With --model minilm: tokens per sentence for inference. Default {MiniLmBenchmark.DefaultInferTokens}.");

    public Option<bool> Quick { get; } = new("--quick")
    {
        Description = "With --model minilm: the smallest run that exercises everything (shape 2x16, inference batches 1,2, 2 steps after 1 warm-up), for checks, not for numbers.",
    };

    /// <summary>Largest inference batch: 4,096 sentences of 512 tokens already hold gigabytes of activations.</summary>
    private const int MaxInferBatch = 4096;

    public IEnumerable<Option> All => [Model, InferBatches, InferTokens, Quick];

    /// <summary>True when the command line asks for the MiniLM bench.</summary>
    public bool Selected(ParseResult p) => p.GetValue(Model) switch
    {
        "minilm" => true,
        "layers" => false,
        var other => throw new UsageException($"--model: '{other}' is not 'layers' or 'minilm'."),
    };

    public int Run(ParseResult p, Option<string> shapesOption, Option<int> stepsOption, Option<int> warmupOption, int threads, bool memory, bool json)
    {
        var quick = p.GetValue(Quick);
        bool Given(Option o) => p.GetResult(o) is { Implicit: false };
        var shapeList = Given(shapesOption) ? p.GetValue(shapesOption)! : quick ? "2x16" : MiniLmBenchmark.DefaultShapes;
        var steps = Given(stepsOption) ? p.GetValue(stepsOption) : quick ? 2 : MiniLmBenchmark.DefaultSteps;
        var warmup = Given(warmupOption) ? p.GetValue(warmupOption) : MiniLmBenchmark.DefaultWarmup;
        var inferBatchList = Given(InferBatches) ? p.GetValue(InferBatches)! : quick ? "1,2" : MiniLmBenchmark.DefaultInferBatches;
        var inferTokens = quick && !Given(InferTokens) ? 16 : p.GetValue(InferTokens);
        var shapes = shapeList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => MiniLmWorkload.ParseShape(MiniLmWorkload.ShapePrefix + s)).ToList();
        var inferBatches = inferBatchList.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var b) && b is >= 1 and <= MaxInferBatch ? b
                : throw new UsageException($"--infer-batches: '{x}' is not a whole number from 1 to {MaxInferBatch}.")).ToList();
        if (steps < 1 || warmup < 0) throw new UsageException("--steps must be >= 1 and --warmup >= 0.");
        TorchSharp.torch.set_num_threads(threads);

        var started = DateTime.UtcNow;
        List<BenchRecord> records = [];
        if (json || Console.IsOutputRedirected)
            records = MiniLmBenchmark.Run(shapes, inferBatches, inferTokens, warmup, steps, memory, threads, null);
        else
            AnsiConsole.Status().Start("benchmarking", ctx =>
                records = MiniLmBenchmark.Run(shapes, inferBatches, inferTokens, warmup, steps, memory, threads, s => ctx.Status($"benchmarking {s}")));
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(records, new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        if (AnsiConsole.Profile.Width < 140) AnsiConsole.Profile.Width = 140;
        Render(records, threads);
        var blas = BlasCheck.Run(measureSgemm: false);
        AnsiConsole.MarkupLine(Markup.Escape($"{records.Count} measurements in {(DateTime.UtcNow - started).TotalSeconds:F0} s; medians of {steps} steps after {warmup} warm-up, variants interleaved; " +
                                             $"LoRA/DoRA r = {MiniLmWorkload.Rank}, α = {2 * MiniLmWorkload.Rank} on query/value; AdamW. CPU: {CpuIdentity.ModelName}; BLAS: {blas.Path}."));
        return 0;
    }

    private static void Render(List<BenchRecord> records, int threads)
    {
        string F(double v, string f) => v.ToString(f, CultureInfo.InvariantCulture);
        var table = new Table().Title($"[bold]dora bench --model minilm[/] ({threads} thread{(threads == 1 ? "" : "s")}, float32)")
            .AddColumns("shape", "phase", "variant", "median ms (min)", "sentences/s", "peak RSS MB", "step MB", "÷ LoRA");
        foreach (var group in records.GroupBy(r => (r.Shape, r.Phase)))
        {
            var lora = group.FirstOrDefault(r => r.Variant == MiniLmVariants.Lora);
            foreach (var r in group)
                table.AddRow(r.Shape, r.Phase, r.Variant, $"{F(r.MedianMs, "F1")} ({F(r.MinMs, "F1")})",
                    r.SentencesPerSecond is { } s ? F(s, "F1") : "–", r.PeakMb is { } pk ? F(pk, "F0") : "–", r.StepMb is { } sm ? F(sm, "F0") : "–",
                    lora is null ? "–" : F(r.MedianMs / lora.MedianMs, "F3"));
            table.AddEmptyRow();
        }
        AnsiConsole.Write(table);
    }
}
