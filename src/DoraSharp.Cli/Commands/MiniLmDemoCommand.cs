using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DoraSharp.Cli.MiniLm;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora minilm-demo`: all-MiniLM-L6-v2 with a linear head classifying Debian package descriptions into five
/// sections; frozen encoder vs LoRA vs DoRA vs full fine-tuning, over several seeds. Renders progress, a table
/// and results.json; the work is <see cref="ClassificationExperiment"/>'s.
/// </summary>
internal static class MiniLmDemoCommand
{
    private static readonly ClassificationSettings Defaults = new();

    /// <summary>all-MiniLM-L6-v2's position embeddings: the longest sequence it can read, [CLS] and [SEP] included.</summary>
    public const int MaxSequence = 512;

    public static Command Create()
    {
        var maxLength = OptionRules.Whole("--max-length", Defaults.MaxLength, 2, MaxSequence, "Truncation length in word pieces ([CLS] and [SEP] included).");
        var trainPerClass = OptionRules.Whole("--train-per-class", Defaults.TrainPerClass, 1, 600, "Training examples per class (of 600), the same subset for every run.");
        var testPerClass = OptionRules.OptionalWhole("--test-per-class", 1, 150, "Test examples per class (default: all 150).");
        var epochs = OptionRules.Whole("--epochs", Defaults.Epochs, 1, 1000, "Passes over the training subset.");
        var batch = OptionRules.Whole("--batch", Defaults.BatchSize, 1, 1024, "Examples per optimizer step.");
        var lr = OptionRules.Real("--lr", Defaults.AdapterLearningRate, 0, aboveMin: true, 10, "AdamW learning rate of the LoRA/DoRA adapters.");
        var headLr = OptionRules.Real("--head-lr", Defaults.HeadLearningRate, 0, aboveMin: true, 10, "AdamW learning rate of the classification head.");
        var fullLr = OptionRules.Real("--full-lr", Defaults.FullLearningRate, 0, aboveMin: true, 10, "AdamW learning rate of the encoder in full fine-tuning.");
        var rank = OptionRules.Whole("--r", Defaults.R, 1, DemoCommand.MaxRank, "Adapter rank r.");
        var alpha = OptionRules.Real("--alpha", Defaults.LoraAlpha, 0, aboveMin: true, DemoCommand.MaxAlpha, "lora_alpha (scaling = alpha / r).");
        var targets = new Option<string>("--targets") { Description = "Comma-separated modules to adapt, Hugging Face BERT names (query, key, value, dense, ...).", DefaultValueFactory = _ => string.Join(',', Defaults.TargetModules) };
        var seeds = new Option<int[]>("--seeds")
        {
            Description = $"Comma-separated seeds, one run per method and seed. Default: {string.Join(',', Defaults.Seeds)}. Allowed: up to 100 distinct seeds, each 0 to {int.MaxValue}.",
            HelpName = "S1,S2,…",
            DefaultValueFactory = _ => [.. Defaults.Seeds],
            CustomParser = r => r.Tokens.Count == 0 ? [.. Defaults.Seeds] : OptionRules.ParseWholeList(r, "--seeds", r.Tokens[^1].Value, 0, int.MaxValue, 100, "1,2,3") ?? [],
        };
        var methods = new Option<string>("--methods") { Description = "Comma-separated methods: frozen, lora, dora, full.", DefaultValueFactory = _ => string.Join(',', FineTuningMethods.All.Select(m => m.Key())) };
        // One thread by default: on a shared 2-core machine two libtorch threads ran this 2x slower (they wait on each
        // other whenever a core is taken); on an idle machine --threads 2 is faster.
        var threads = OptionRules.Whole("--threads", 1, 1, 256, "libtorch intra-op threads (2 is faster on an idle 2-core machine, 1 on a busy one).");
        var output = new Option<string>("--out") { Description = "Folder for results.json and the trained heads.", DefaultValueFactory = _ => "minilm-demo" };
        var command = new Command("minilm-demo",
            "Fine-tune all-MiniLM-L6-v2 to classify Debian package descriptions: frozen encoder, LoRA, DoRA and full fine-tuning, each with a linear head.")
            { maxLength, trainPerClass, testPerClass, epochs, batch, lr, headLr, fullLr, rank, alpha, targets, seeds, methods, threads, output };
        command.SetAction(p =>
        {
            var settings = new ClassificationSettings
            {
                MaxLength = p.GetValue(maxLength),
                TrainPerClass = p.GetValue(trainPerClass),
                TestPerClass = p.GetValue(testPerClass),
                Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batch),
                AdapterLearningRate = p.GetValue(lr),
                HeadLearningRate = p.GetValue(headLr),
                FullLearningRate = p.GetValue(fullLr),
                R = p.GetValue(rank),
                LoraAlpha = p.GetValue(alpha),
                TargetModules = SplitList(p.GetValue(targets)!, "--targets"),
                Seeds = p.GetValue(seeds)!,
                Methods = SplitList(p.GetValue(methods)!, "--methods").Select(ParseMethod).ToArray(),
            };
            return Run(settings, p.GetValue(threads), p.GetValue(output)!);
        });
        return command;
    }

    private static string[] SplitList(string value, string option)
    {
        var items = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return items.Length > 0 ? items : throw new UsageException($"{option}: give at least one value (got '{value}').");
    }

    private static FineTuningMethod ParseMethod(string name)
    {
        foreach (var m in FineTuningMethods.All)
            if (string.Equals(m.Key(), name, StringComparison.OrdinalIgnoreCase)) return m;
        throw new UsageException($"--methods: '{name}' is not one of {string.Join(", ", FineTuningMethods.All.Select(x => x.Key()))}.");
    }

    private static int Run(ClassificationSettings settings, int threads, string output)
    {
        try { settings.Validate(); }
        catch (ArgumentException e) { throw new UsageException(e.Message); }
        // Checked and locked before the data and the model load: a second run into the same folder would mix its files.
        output = OutputFolder.Prepare("--out", output);
        using var outLock = FolderLock.Acquire("--out", output);
        TorchSharp.torch.set_num_threads(threads);
        var wall = Stopwatch.StartNew();

        var dataset = DebianDescriptions.Load(DebianDescriptions.FindSnapshot());
        var tokenizer = MiniLmTokenizer.FromPackage(settings.MaxLength);
        var data = DebianClassificationData.Create(dataset, tokenizer, settings.TrainPerClass, settings.TestPerClass, settings.SubsetSeed);
        var lengths = data.Train.Lengths.ToArray();
        AnsiConsole.MarkupLine($"Debian descriptions: {data.Labels.Count} sections ({string.Join(", ", data.Labels)}), " +
                               $"{data.Train.Count} training and {data.Test.Count} test examples; " +
                               $"{100.0 * lengths.Count(l => l == settings.MaxLength) / lengths.Length:F0} % of training texts truncated at {settings.MaxLength} word pieces.");
        var saver = new MiniLmRunSaver(output);

        IReadOnlyList<MethodSummary> summaries = null!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<(FineTuningMethod, int?), ProgressTask>();
                summaries = ClassificationExperiment.Run(settings, data, p =>
                {
                    if (!tasks.TryGetValue((p.Method, p.Seed), out var task))
                        tasks[(p.Method, p.Seed)] = task = ctx.AddTask(Label(p), maxValue: p.Total);
                    task.Description = Label(p);
                    task.Value = p.Done;
                }, saver.Save);
            });
        var elapsed = wall.Elapsed;

        Render(summaries, settings);
        var path = MiniLmResultsFile.Write(output, settings, summaries, data, threads, elapsed);
        AnsiConsole.MarkupLine($"[grey]Results: {Markup.Escape(path)}; {saver.Describe()}; total wall time {elapsed.TotalSeconds:F0} s on {threads} thread(s).[/]");
        return 0;
    }

    private static string Label(ExperimentProgress p)
    {
        var who = p.Seed is { } s ? $"{p.Method.Key(),-6} seed {s}" : $"{p.Method.Key(),-6} embed";
        var what = p.Phase switch
        {
            ExperimentPhase.Training => p.Loss is { } l ? $"train, loss {l:F3}" : "train",
            ExperimentPhase.Evaluating => "test",
            _ => "embedding train+test",
        };
        return Markup.Escape($"{who}  {what}");
    }

    private static void Render(IReadOnlyList<MethodSummary> summaries, ClassificationSettings settings)
    {
        var seeds = string.Join(", ", settings.Seeds);
        var table = new Table()
            .Title($"[bold]all-MiniLM-L6-v2, Debian descriptions[/] ({summaries[0].TestCount} test texts, seeds {seeds})")
            .AddColumns("method", "test acc. % (mean ± std)", "per seed", "trainable", "% of all", "train s/run");
        foreach (var s in summaries)
        {
            var total = s.Runs[0].TotalParameters;
            table.AddRow(
                MethodLabel(s.Method),
                $"{100 * s.MeanAccuracy:F1} ± {100 * s.StdAccuracy:F1}",
                string.Join("  ", s.Accuracies.Select(a => $"{100 * a:F1}")),
                $"{s.TrainableParameters:N0}",
                $"{100.0 * s.TrainableParameters / total:F2} %",
                $"{s.MeanTrainTime.TotalSeconds:F0}");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Markup.Escape(
            $"Adapters: r={settings.R}, alpha={settings.LoraAlpha:G}, targets [{string.Join(", ", settings.TargetModules)}] in every layer, lr {Rate(settings.AdapterLearningRate)}; " +
            $"full fine-tuning lr {Rate(settings.FullLearningRate)}; AdamW, weight decay {Rate(settings.WeightDecay)}."));
        AnsiConsole.MarkupLine($"[grey]std = sample standard deviation over {settings.Seeds.Count} seed(s). Every method trains the head (lr {Rate(settings.HeadLearningRate)}); " +
                               $"frozen reuses embeddings computed once (its train time includes that pass); {settings.Epochs} epoch(s) of {settings.TrainPerClass} texts per class, batch {settings.BatchSize}, max length {settings.MaxLength}.[/]");
    }

    private static string Rate(double value) => value.ToString("0.##########", CultureInfo.InvariantCulture);

    private static string MethodLabel(FineTuningMethod method) => method switch
    {
        FineTuningMethod.Frozen => "frozen + head",
        FineTuningMethod.Lora => "LoRA + head",
        FineTuningMethod.Dora => "DoRA + head",
        _ => "full + head",
    };
}
