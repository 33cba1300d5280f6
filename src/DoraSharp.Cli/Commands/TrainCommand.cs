using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using DoraSharp.Cli.OwnData;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using DoraSharp.MiniLM.OwnData;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora train`: fine-tunes all-MiniLM-L6-v2 on the user's own file, for text classification (a head on the
/// mean-pooled embedding) or for search (<c>--task similarity</c>, query/document pairs), DoRA by default. The run
/// folder is built in a staging folder and renamed into place when complete (see <see cref="RunStaging"/>).
/// </summary>
internal static class TrainCommand
{
    private static readonly TextTrainingOptions Defaults = new();

    public static Command Create()
    {
        var task = OwnDataOptions.Choice("--task", "classification", "classification: texts with labels; similarity: (query, document) pairs for search.", "classification", "similarity");
        var data = new Option<string>("--data") { Description = "Training file (.csv, .tsv or .jsonl; UTF-8).", HelpName = "FILE", Required = true };
        var output = new Option<string>("--out") { Description = "Run folder to create (refused if it exists and is not empty, unless --force).", HelpName = "DIR", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace an existing --out, once the new run has finished." };
        var resume = new Option<bool>("--resume") { Description = "Continue an unfinished run of --out from its last epoch checkpoint (same command and data)." };
        var format = OwnDataOptions.Format();
        var textColumn = new Option<string>("--text-column") { Description = "Column with the text (classification).", DefaultValueFactory = _ => "text" };
        var labelColumn = new Option<string>("--label-column") { Description = "Column with the label, any string (classification).", DefaultValueFactory = _ => "label" };
        var queryColumn = new Option<string>("--query-column") { Description = "Column with the query (similarity).", DefaultValueFactory = _ => "query" };
        var documentColumn = new Option<string>("--document-column") { Description = "Column with the matching document (similarity).", DefaultValueFactory = _ => "document" };
        var validation = new Option<string?>("--validation") { Description = "Validation file (same format and columns). Default: split off the training file.", HelpName = "FILE" };
        var split = OptionRules.Real("--validation-split", 0.2, 0, aboveMin: true, 0.9,
            "Fraction of the training file kept for validation when no --validation is given (stratified by label, seeded).");
        var method = OwnDataOptions.Choice("--method", "dora", "What trains: dora or lora adapters, full fine-tuning, or frozen (the head only).", "dora", "lora", "full", "frozen");
        var rank = OwnDataOptions.Int("--r", Defaults.R, 1, 1024, "Adapter rank r.");
        var alpha = OwnDataOptions.Positive("--alpha", Defaults.Alpha, 10_000, "lora_alpha (scaling = alpha / r).");
        var targets = new Option<string>("--targets")
        {
            Description = "Comma-separated modules to adapt, Hugging Face BERT names (query, key, value, dense, ...).",
            DefaultValueFactory = _ => string.Join(',', Defaults.Targets),
            Validators = { r => { var v = r.GetValueOrDefault<string>() ?? ""; if (v.Split(',', StringSplitOptions.TrimEntries).Any(string.IsNullOrEmpty)) r.AddError($"--targets needs module names separated by commas (got '{v}')."); } },
        };
        var epochs = OwnDataOptions.Int("--epochs", Defaults.Epochs, 1, 1000, "Maximum passes over the training data.");
        var batch = OwnDataOptions.Int("--batch", Defaults.BatchSize, 1, 4096, "Examples per step (similarity: pairs per step; each query's negatives are the batch's other documents).");
        var lr = OwnDataOptions.OptionalPositive("--lr", 10, "AdamW learning rate of the encoder's trained parameters. Default: 1e-3 for lora/dora, 5e-5 for full.");
        var headLr = OwnDataOptions.Positive("--head-lr", Defaults.HeadLearningRate, 10, "AdamW learning rate of the classification head.");
        var maxLength = OwnDataOptions.Int("--max-length", Defaults.MaxLength, 2, 512, "Tokens per text, [CLS] and [SEP] included; longer texts are truncated (counted in the summary).");
        var seed = OwnDataOptions.Int("--seed", Defaults.Seed, 0, int.MaxValue, "Seed of the head and adapter initialisation, dropout, batch order and validation split.");
        var patience = OwnDataOptions.Int("--patience", Defaults.Patience!.Value, 0, 1000, "Epochs without validation improvement before stopping (0: never stop early). The best epoch's weights are kept.");
        var monitor = OwnDataOptions.Choice("--monitor", "loss", "What early stopping watches on the validation set: loss, or accuracy (MRR for similarity).", "loss", "accuracy");
        var threads = OwnDataOptions.Int("--threads", 1, 1, 256, "libtorch threads (1 is faster on a busy 2-core machine, 2 on an idle one).");
        var command = new Command("train", "Fine-tune all-MiniLM-L6-v2 on your own data (DoRA by default): text classification, or search with --task similarity.")
        {
            task, data, output, force, resume, format, textColumn, labelColumn, queryColumn, documentColumn, validation, split, method, rank, alpha, targets,
            epochs, batch, lr, headLr, maxLength, seed, patience, monitor, threads,
        };
        command.SetAction(p =>
        {
            var options = new TextTrainingOptions
            {
                Method = ParseMethod(p.GetValue(method)!),
                R = p.GetValue(rank),
                Alpha = p.GetValue(alpha),
                Targets = p.GetValue(targets)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
                Epochs = p.GetValue(epochs),
                BatchSize = p.GetValue(batch),
                LearningRate = p.GetValue(lr),
                HeadLearningRate = p.GetValue(headLr),
                MaxLength = p.GetValue(maxLength),
                Seed = p.GetValue(seed),
                Patience = p.GetValue(patience) is > 0 and var n ? n : null,
                Monitor = p.GetValue(monitor) == "accuracy" ? StoppingMetric.Accuracy : StoppingMetric.Loss,
            };
            options.Validate();
            var request = new TrainRequest(p.GetValue(data)!, p.GetValue(validation), p.GetValue(split), OwnDataOptions.ParseFormat(p.GetValue(format)),
                p.GetValue(output)!, p.GetValue(force), p.GetValue(resume), p.GetValue(threads));
            int previous = TorchSharp.torch.get_num_threads();
            TorchSharp.torch.set_num_threads(request.Threads);
            try
            {
                return p.GetValue(task) == "similarity"
                    ? TrainSimilarity(options, request, p.GetValue(queryColumn)!, p.GetValue(documentColumn)!)
                    : TrainClassifier(options, request, p.GetValue(textColumn)!, p.GetValue(labelColumn)!);
            }
            finally
            {
                TorchSharp.torch.set_num_threads(previous);
            }
        });
        return command;
    }

    private sealed record TrainRequest(string Data, string? Validation, double Split, TextTableFormat? Format, string Out, bool Force, bool Resume, int Threads);

    /// <summary>What must be unchanged for --resume to continue a run: every training option and the data files' contents.</summary>
    private static Dictionary<string, string> Fingerprint(string task, TextTrainingOptions options, TrainRequest request, IReadOnlyDictionary<string, string> columns)
    {
        static string Digest(string path) => Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(path)));
        var c = CultureInfo.InvariantCulture;
        var f = new Dictionary<string, string>
        {
            ["--task"] = task,
            ["--data (SHA-256)"] = Digest(request.Data),
            ["--validation (SHA-256)"] = request.Validation is null ? "none" : Digest(request.Validation),
            ["--validation-split"] = request.Validation is null ? request.Split.ToString("R", c) : "none",
            ["--method"] = options.Method.Key(),
            ["--r"] = options.R.ToString(c),
            ["--alpha"] = options.Alpha.ToString("R", c),
            ["--targets"] = string.Join(",", options.Targets),
            ["--epochs"] = options.Epochs.ToString(c),
            ["--batch"] = options.BatchSize.ToString(c),
            ["--lr"] = options.EffectiveLearningRate.ToString("R", c),
            ["--head-lr"] = options.HeadLearningRate.ToString("R", c),
            ["--max-length"] = options.MaxLength.ToString(c),
            ["--seed"] = options.Seed.ToString(c),
            ["--patience"] = options.Patience?.ToString(c) ?? "0",
            ["--monitor"] = options.Monitor.ToString(),
        };
        foreach (var (k, v) in columns) f[$"column {k}"] = v;
        return f;
    }

    internal static FineTuningMethod ParseMethod(string name) =>
        FineTuningMethods.All.First(m => string.Equals(m.Key(), name, StringComparison.OrdinalIgnoreCase));

    private static int TrainClassifier(TextTrainingOptions options, TrainRequest request, string textColumn, string labelColumn)
    {
        var wall = Stopwatch.StartNew();
        // Everything about the data is checked before the first weight is loaded or a folder created.
        var all = LabelledTexts.From(TextTableReader.Read(request.Data, request.Format), textColumn, labelColumn);
        var labels = all.DistinctLabels();
        if (labels.Count < 2)
            throw new UsageException($"{request.Data}: every row has the label '{labels[0]}'; classification needs at least two different labels in --label-column '{labelColumn}'.");
        LabelledTexts train, validation;
        if (request.Validation is { } validationFile)
        {
            train = all;
            validation = LabelledTexts.From(TextTableReader.Read(validationFile, request.Format), textColumn, labelColumn);
            for (int i = 0; i < validation.Count; i++)
                if (!labels.Contains(validation.Labels[i], StringComparer.Ordinal))
                    throw new UsageException($"{validationFile}, line {validation.Lines[i]}: label '{validation.Labels[i]}' never appears in the training file {request.Data}.");
        }
        else
        {
            (train, validation) = all.StratifiedSplit(request.Split, options.Seed);
            if (validation.Count == 0)
                throw new UsageException($"{request.Data}: too few examples to split off a validation set (every label appears once); give --validation FILE.");
        }

        var tokenizer = MiniLmTokenizer.FromPackage(options.MaxLength);
        var index = labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        var trainSet = new EncodedExamples(tokenizer, train.Texts, train.Labels.Select(l => index[l]).ToArray());
        var validationSet = new EncodedExamples(tokenizer, validation.Texts, validation.Labels.Select(l => index[l]).ToArray());
        int truncated = trainSet.Lengths.Concat(validationSet.Lengths).Count(l => l >= options.MaxLength);

        using var staging = RunStaging.Begin(request.Out, request.Force, request.Resume);
        using var stop = new StopSignals();
        AnsiConsole.MarkupLine(Markup.Escape(
            $"{labels.Count} labels ({Preview(labels)}); {train.Count} training and {validation.Count} validation texts" +
            (request.Validation is null ? $" (stratified {request.Split:P0} split, seed {options.Seed})" : $" ({request.Validation})") +
            $"; {truncated} text(s) reach --max-length {options.MaxLength} and are truncated."));
        AnsiConsole.MarkupLine(Markup.Escape($"Method {options.Method.Key()}" + (options.Method.HasAdapter() ? $", r {options.R}, alpha {OwnDataOptions.Show(options.Alpha)}, targets {string.Join(",", options.Targets)}" : "") +
            $"; up to {options.Epochs} epoch(s) of batch {options.BatchSize}; lr {OwnDataOptions.Show(options.EffectiveLearningRate)}, head lr {OwnDataOptions.Show(options.HeadLearningRate)}; {request.Threads} thread(s)."));

        TrainedClassifier trained;
        try
        {
            if (request.Resume) AnsiConsole.MarkupLine(Markup.Escape($"Resuming from the epoch checkpoint in {staging.CheckpointDirectory}."));
            var checkpoint = new EpochCheckpoint(staging.CheckpointDirectory, Fingerprint("classification", options, request, new Dictionary<string, string> { ["text"] = textColumn, ["label"] = labelColumn }));
            trained = WithProgress(report => TextClassifierTrainer.Train(options, labels.Count, trainSet, validationSet, report.Step, report.Epoch, stop.Token, checkpoint, request.Resume));
        }
        catch (OperationCanceledException) when (stop.Stopped)
        {
            Console.Error.WriteLine($"dora: stopped ({stop.Name}); {staging.Target} was not written.");
            return stop.ExitCode;
        }
        using (trained)
        {
            var (_, trainProbabilities) = TextClassifierTrainer.Evaluate(trained.Model, trainSet);
            var trainMetrics = ClassificationMetrics.Compute(trainSet.Labels, TextClassifierTrainer.ArgMax(trainProbabilities), labels.Count);
            var validationMetrics = ClassificationMetrics.Compute(validationSet.Labels, TextClassifierTrainer.ArgMax(trained.ValidationProbabilities), labels.Count);

            var files = TextRunFiles.SaveWeights(staging.Staging, options.Method, trained.Model, trained.Adapters);
            RunFolderWriter.WriteJsonLines(staging.File(TextRunFiles.ValidationDataFile), ["text", "label"], [validation.Texts, validation.Labels]);
            files[TextRunFiles.ValidationDataFile] = "the validation examples as used (text, label), in the order of the predictions";
            using (var stream = File.Create(staging.File(TextRunFiles.ValidationPredictionsFile)))
                RunFolderWriter.WritePredictionsJsonLines(stream, labels, validation.Texts, validation.Labels, null, trained.ValidationProbabilities);
            files[TextRunFiles.ValidationPredictionsFile] = "the kept model's predictions on validation.jsonl (float32 probabilities, shortest round-trip form)";
            files[TextRunFiles.ResultsFile] = "per-epoch losses and validation accuracy, the epoch kept, train and validation metrics";
            var results = new TextRunResults
            {
                Epochs = trained.History,
                BestEpoch = trained.BestEpoch,
                StoppedEarly = trained.StoppedEarly,
                Train = trainMetrics,
                Validation = validationMetrics,
                TruncatedTexts = truncated,
                TrainableParameters = trained.TrainableParameters,
                TotalParameters = trained.TotalParameters,
                WallSeconds = Math.Round(wall.Elapsed.TotalSeconds, 1),
            };
            RunFolderWriter.WriteResults(staging.Staging, results);
            var plotWarning = DoraSharp.Cli.Rendering.PlotFonts.Configure();
            OwnDataPlots.SaveLoss(staging.File("loss.png"), trained.History, trained.BestEpoch);
            files["loss.png"] = "training and validation loss per epoch";
            OwnDataPlots.SaveConfusion(staging.File("confusion.png"), labels, validationMetrics.Confusion);
            files["confusion.png"] = "validation confusion matrix (true label on the rows)";
            files[TextRunFiles.ReadmeFile] = "this description, for people";
            files[TextRunFiles.ManifestFile] = "this description, for programs (format and version, labels, tokenizer and training settings)";
            var manifest = new TextRunManifest
            {
                Task = "classification",
                Method = options.Method.Key(),
                Pooling = "mean of the last hidden state over real tokens, then Linear(384, classes); softmax gives the probabilities",
                Labels = labels,
                Tokenizer = new TokenizerSettings { MaxLength = options.MaxLength },
                Training = Settings(options, request, trained.History.Count, trained.BestEpoch, train.Count, validation.Count,
                    new Dictionary<string, string> { ["text"] = textColumn, ["label"] = labelColumn }),
                Files = files,
                CreatedBy = CreatedBy(),
            };
            RunFolderWriter.WriteReadme(staging.Staging, manifest);
            RunFolderWriter.WriteManifest(staging.Staging, manifest);
            staging.Commit();

            var table = new Table().Title($"[bold]{Markup.Escape(options.Method.Key())}[/], epoch {trained.BestEpoch} of {trained.History.Count} kept" + (trained.StoppedEarly ? " (stopped early)" : ""))
                .AddColumns("", "accuracy", "macro-F1", "examples");
            table.AddRow("train", $"{100 * trainMetrics.Accuracy:F1} %", $"{trainMetrics.MacroF1:F3}", $"{trainMetrics.Count}");
            table.AddRow("validation", $"{100 * validationMetrics.Accuracy:F1} %", $"{validationMetrics.MacroF1:F3}", $"{validationMetrics.Count}");
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine(Markup.Escape($"Trainable parameters {trained.TrainableParameters:N0} of {trained.TotalParameters:N0}; " +
                $"{trained.History.Average(h => h.Seconds):F1} s per epoch; total {wall.Elapsed.TotalSeconds:F0} s."));
            if (plotWarning is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape("Plots: " + plotWarning)}[/]");
            AnsiConsole.MarkupLine(Markup.Escape($"Run saved in {staging.Target} (see README.txt there)."));
            return 0;
        }
    }

    private static int TrainSimilarity(TextTrainingOptions options, TrainRequest request, string queryColumn, string documentColumn)
    {
        var wall = Stopwatch.StartNew();
        var all = TextPairs.From(TextTableReader.Read(request.Data, request.Format), queryColumn, documentColumn);
        TextPairs train, validation;
        if (request.Validation is { } validationFile)
        {
            train = all;
            validation = TextPairs.From(TextTableReader.Read(validationFile, request.Format), queryColumn, documentColumn);
        }
        else
        {
            if (all.Count < 4) throw new UsageException($"{request.Data}: {all.Count} pair(s); similarity training needs at least 4 (some to validate on), or give --validation FILE.");
            (train, validation) = all.Split(request.Split, options.Seed);
        }
        if (train.Count < 2) throw new UsageException($"{request.Data}: similarity training needs at least 2 pairs (each query's negatives are the other documents of its batch).");
        if (options.BatchSize < 2) throw new UsageException("--batch must be at least 2 for --task similarity: the other documents of a batch are each query's negatives.");
        if (options.Method == FineTuningMethod.Frozen)
            throw new UsageException("--method frozen has nothing to train for --task similarity; `dora predict --task similarity` without --run scores the pretrained model.");

        var tokenizer = MiniLmTokenizer.FromPackage(options.MaxLength);
        int truncated = train.Queries.Concat(train.Documents).Concat(validation.Queries).Concat(validation.Documents)
            .Count(t => tokenizer.Encode(t).Length >= options.MaxLength);
        using var staging = RunStaging.Begin(request.Out, request.Force, request.Resume);
        using var stop = new StopSignals();
        AnsiConsole.MarkupLine(Markup.Escape($"{train.Count} training and {validation.Count} validation pairs; {truncated} text(s) reach --max-length {options.MaxLength} and are truncated."));
        RankingMetrics before;
        using (var pretrained = MiniLmWeights.LoadPretrained()) before = TextSimilarityTrainer.Rank(pretrained, validation, tokenizer);

        TrainedEncoder trained;
        try
        {
            if (request.Resume) AnsiConsole.MarkupLine(Markup.Escape($"Resuming from the epoch checkpoint in {staging.CheckpointDirectory}."));
            var checkpoint = new EpochCheckpoint(staging.CheckpointDirectory, Fingerprint("similarity", options, request, new Dictionary<string, string> { ["query"] = queryColumn, ["document"] = documentColumn }));
            trained = WithProgress(report => TextSimilarityTrainer.Train(options, train, validation, tokenizer, report.Step, report.Epoch, stop.Token, checkpoint, request.Resume));
        }
        catch (OperationCanceledException) when (stop.Stopped)
        {
            Console.Error.WriteLine($"dora: stopped ({stop.Name}); {staging.Target} was not written.");
            return stop.ExitCode;
        }
        using (trained)
        {
            var after = TextSimilarityTrainer.Rank(trained.Encoder, validation, tokenizer);
            var files = TextRunFiles.SaveWeights(staging.Staging, options.Method, trained.Encoder, trained.Adapters);
            RunFolderWriter.WriteJsonLines(staging.File(TextRunFiles.ValidationDataFile), ["query", "document"], [validation.Queries, validation.Documents]);
            files[TextRunFiles.ValidationDataFile] = "the validation pairs as used (query, document)";
            files[TextRunFiles.ResultsFile] = "per-epoch losses and validation MRR, the epoch kept, ranking metrics before and after";
            RunFolderWriter.WriteResults(staging.Staging, new TextRunResults
            {
                Epochs = trained.History,
                BestEpoch = trained.BestEpoch,
                StoppedEarly = trained.StoppedEarly,
                ValidationRanking = after,
                PretrainedValidationRanking = before,
                TruncatedTexts = truncated,
                TrainableParameters = trained.TrainableParameters,
                TotalParameters = trained.TotalParameters,
                WallSeconds = Math.Round(wall.Elapsed.TotalSeconds, 1),
            });
            var plotWarning = DoraSharp.Cli.Rendering.PlotFonts.Configure();
            OwnDataPlots.SaveLoss(staging.File("loss.png"), trained.History, trained.BestEpoch);
            files["loss.png"] = "training and validation ranking loss per epoch";
            files[TextRunFiles.ReadmeFile] = "this description, for people";
            files[TextRunFiles.ManifestFile] = "this description, for programs (format and version, tokenizer and training settings)";
            var manifest = new TextRunManifest
            {
                Task = "similarity",
                Method = options.Method.Key(),
                Pooling = "mean of the last hidden state over real tokens, then L2 normalisation (sentence-transformers' encode); score = cosine similarity",
                Tokenizer = new TokenizerSettings { MaxLength = options.MaxLength },
                Training = Settings(options, request, trained.History.Count, trained.BestEpoch, train.Count, validation.Count,
                    new Dictionary<string, string> { ["query"] = queryColumn, ["document"] = documentColumn }) with { SimilarityScale = options.SimilarityScale },
                Files = files,
                CreatedBy = CreatedBy(),
            };
            RunFolderWriter.WriteReadme(staging.Staging, manifest);
            RunFolderWriter.WriteManifest(staging.Staging, manifest);
            staging.Commit();
            AnsiConsole.Write(RankingTable($"{validation.Count} validation queries, each ranking {after.Documents} documents", before, after, options.Method.Key()));
            AnsiConsole.MarkupLine(Markup.Escape($"Epoch {trained.BestEpoch} of {trained.History.Count} kept; trainable parameters {trained.TrainableParameters:N0}; " +
                $"{trained.History.Average(h => h.Seconds):F1} s per epoch; total {wall.Elapsed.TotalSeconds:F0} s."));
            if (plotWarning is not null) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape("Plots: " + plotWarning)}[/]");
            AnsiConsole.MarkupLine(Markup.Escape($"Run saved in {staging.Target} (see README.txt there)."));
            return 0;
        }
    }

    internal static Table RankingTable(string title, RankingMetrics before, RankingMetrics? after, string method)
    {
        var table = new Table().Title(Markup.Escape(title)).AddColumns("model", "recall@1", "recall@5", "MRR");
        table.AddRow("pretrained MiniLM", $"{before.RecallAt1:F3}", $"{before.RecallAt5:F3}", $"{before.Mrr:F3}");
        if (after is not null) table.AddRow(Markup.Escape(method), $"{after.RecallAt1:F3}", $"{after.RecallAt5:F3}", $"{after.Mrr:F3}");
        return table;
    }

    private static TrainingSettings Settings(TextTrainingOptions options, TrainRequest request, int epochsRun, int bestEpoch, int trainCount, int validationCount, Dictionary<string, string> columns) => new()
    {
        Data = Path.GetFullPath(request.Data),
        ValidationData = request.Validation is null ? null : Path.GetFullPath(request.Validation),
        ValidationSplit = request.Validation is null ? request.Split : null,
        Columns = columns,
        TrainExamples = trainCount,
        ValidationExamples = validationCount,
        R = options.R,
        Alpha = options.Alpha,
        Targets = options.Targets,
        Epochs = options.Epochs,
        EpochsRun = epochsRun,
        BestEpoch = bestEpoch,
        BatchSize = options.BatchSize,
        LearningRate = options.EffectiveLearningRate,
        HeadLearningRate = options.HeadLearningRate,
        Seed = options.Seed,
        Patience = options.Patience,
        Monitor = options.Monitor.ToString().ToLowerInvariant(),
        Threads = request.Threads,
    };

    private static string CreatedBy() =>
        $"dora train, DoraSharp {typeof(TrainCommand).Assembly.GetName().Version?.ToString(3) ?? "?"}, {DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}";

    private static string Preview(IReadOnlyList<string> labels) =>
        labels.Count <= 8 ? string.Join(", ", labels) : string.Join(", ", labels.Take(8)) + $", … {labels.Count - 8} more";

    private sealed record Reporter(Action<TrainingStep> Step, Action<EpochRecord> Epoch);

    /// <summary>Runs training under a progress bar: epoch, running loss, examples per second, elapsed time and ETA.</summary>
    private static T WithProgress<T>(Func<Reporter, T> work)
    {
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < 120) AnsiConsole.Profile.Width = 120;
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx =>
            {
                ProgressTask? task = null;
                result = work(new Reporter(
                    s =>
                    {
                        task ??= ctx.AddTask("training", maxValue: s.TotalSteps);
                        task.Description = Markup.Escape(s.Phase == "train"
                            ? $"epoch {s.Epoch}/{s.Epochs}  loss {s.Loss:F3}  {s.ExamplesPerSecond:F1} ex/s"
                            : $"epoch {s.Epoch}/{s.Epochs}  validating");
                        task.Value = s.Step;
                    },
                    e => AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                        $"epoch {e.Epoch}: train loss {e.TrainLoss:F4}, validation loss {e.ValidationLoss:F4}, validation score {e.ValidationScore:F4}, {e.Seconds:F1} s")))));
                if (task is not null) task.Value = task.MaxValue;
            });
        return result;
    }
}
