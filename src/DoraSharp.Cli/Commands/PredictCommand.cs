using System.CommandLine;
using System.Text;
using System.Text.Json;
using DoraSharp.Cli.OwnData;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Onnx;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora predict`: applies a `dora train` run to a file (or to standard input, one text per line). Classification
/// writes each text's predicted label and per-class probabilities; when the file has labels it also scores them.
/// Similarity ranks, for each query of a pairs file, every document of the file, for the run and for the
/// pretrained model.
/// </summary>
internal static class PredictCommand
{
    public static Command Create()
    {
        var task = OwnDataOptions.Choice("--task", "classification", "classification or similarity (as the run was trained).", "classification", "similarity");
        var run = new Option<string?>("--run") { Description = "Run folder written by `dora train`. Similarity only: omit to score the pretrained model.", HelpName = "DIR" };
        var data = new Option<string?>("--data") { Description = "Data file (.csv, .tsv, .jsonl). Classification: omit or '-' to read texts from standard input, one per line.", HelpName = "FILE" };
        var format = OwnDataOptions.Format();
        var textColumn = new Option<string>("--text-column") { Description = "Column with the text.", DefaultValueFactory = _ => "text" };
        var labelColumn = new Option<string>("--label-column") { Description = "Column with the true label; when the file has it, predictions are scored.", DefaultValueFactory = _ => "label" };
        var queryColumn = new Option<string>("--query-column") { Description = "Column with the query (similarity).", DefaultValueFactory = _ => "query" };
        var documentColumn = new Option<string>("--document-column") { Description = "Column with the matching document (similarity).", DefaultValueFactory = _ => "document" };
        var output = new Option<string?>("--output") { Description = "Predictions file: .csv or .jsonl. Default: CSV on standard output (the summary then goes to standard error).", HelpName = "FILE" };
        var metrics = new Option<string?>("--metrics") { Description = "Metrics JSON file. Default: <output>.metrics.json when --output is given.", HelpName = "FILE" };
        var maxLength = OptionRules.OptionalWhole("--max-length", 2, 512, "Similarity without --run: tokens per text (default 128). A run uses its own setting.");
        var threads = OwnDataOptions.Int("--threads", 1, 1, 256, "libtorch threads (ONNX Runtime's with --engine onnx). Exact reproduction of a run's numbers needs the thread count it was trained with.");
        var engine = OwnDataOptions.Choice("--engine", "torchsharp", "torchsharp: the run folder through TorchSharp; onnx: a folder written by `dora export` (--model) through ONNX Runtime.", "torchsharp", "onnx");
        var model = new Option<string?>("--model") { Description = "With --engine onnx: the folder `dora export` wrote (instead of --run).", HelpName = "DIR" };
        var command = new Command("predict", "Apply a `dora train` run to a file: labels with probabilities (classification) or search rankings (--task similarity).")
            { task, run, data, format, textColumn, labelColumn, queryColumn, documentColumn, output, metrics, maxLength, threads, engine, model };
        command.SetAction(p =>
        {
            int previous = TorchSharp.torch.get_num_threads();
            TorchSharp.torch.set_num_threads(p.GetValue(threads));
            try
            {
                var outputPath = p.GetValue(output);
                if (outputPath is not null && FormatOf(outputPath) is null)
                    throw new UsageException($"--output {outputPath}: name the file .csv or .jsonl.");
                var source = ModelSource.From(p.GetValue(engine)!, p.GetValue(run), p.GetValue(model), p.GetValue(threads));
                var metricsPath = p.GetValue(metrics) ?? (outputPath is null ? null : Path.ChangeExtension(outputPath, null) + ".metrics.json");
                // With predictions on standard output, the human summary must not be mixed into them.
                var console = outputPath is null ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;
                // Pipes and files have no width; Spectre would assume 80 columns and wrap the tables.
                if ((outputPath is null ? Console.IsErrorRedirected : Console.IsOutputRedirected) && console.Profile.Width < 120) console.Profile.Width = 120;
                return p.GetValue(task) == "similarity"
                    ? Similarity(source, p.GetValue(run), p.GetValue(data), OwnDataOptions.ParseFormat(p.GetValue(format)), p.GetValue(queryColumn)!, p.GetValue(documentColumn)!,
                        outputPath, metricsPath, p.GetValue(maxLength), console)
                    : Classify(source, p.GetValue(run), p.GetValue(data), OwnDataOptions.ParseFormat(p.GetValue(format)), p.GetValue(textColumn)!, p.GetValue(labelColumn)!,
                        outputPath, metricsPath, console);
            }
            finally
            {
                TorchSharp.torch.set_num_threads(previous);
            }
        });
        return command;
    }

    private static TextTableFormat? FormatOf(string path) => TextTableFormats.FromExtension(path) is { } f and not TextTableFormat.Tsv ? f : null;

    /// <summary>Where predictions come from: a run folder through TorchSharp, or an exported folder through ONNX Runtime.</summary>
    private sealed record ModelSource(string? OnnxFolder, int Threads)
    {
        public static ModelSource From(string engine, string? run, string? model, int threads)
        {
            if (engine == "onnx")
            {
                if (model is null) throw new UsageException("--engine onnx needs --model: the folder `dora export` wrote.");
                if (run is not null) throw new UsageException("--engine onnx reads --model, not --run; give one of them (export the run first with `dora export`).");
                return new ModelSource(model, threads);
            }
            if (model is not null) throw new UsageException("--model is the folder `dora export` wrote, read with --engine onnx; add --engine onnx or give --run instead.");
            return new ModelSource(null, threads);
        }

        /// <summary>Opens the exported folder; a bad one is a user error (one line, exit 2).</summary>
        public OnnxTextModel Open(OnnxModelKind expected)
        {
            OnnxTextModel model;
            try { model = OnnxTextModel.Load(OnnxFolder!, Threads); }
            catch (OnnxModelException e) { throw new UsageException($"--model {OnnxFolder}: {e.Message}"); }
            if (model.Kind == expected) return model;
            model.Dispose();
            throw new UsageException($"--model {OnnxFolder}: an exported {(expected == OnnxModelKind.Classification ? "embedding (similarity)" : "classification")} model, but --task is {(expected == OnnxModelKind.Classification ? "classification" : "similarity")}.");
        }
    }

    private static int Classify(ModelSource engine, string? run, string? data, TextTableFormat? format, string textColumn, string labelColumn,
        string? outputPath, string? metricsPath, IAnsiConsole console)
    {
        if (run is null && engine.OnnxFolder is null) throw new UsageException("--run is required for classification: give the folder `dora train` wrote.");
        var manifest = engine.OnnxFolder is null ? TextRunFiles.ReadManifest(run!, "classification") : null;
        using var onnx = engine.OnnxFolder is null ? null : engine.Open(OnnxModelKind.Classification);
        IReadOnlyList<string> texts;
        IReadOnlyList<string?>? truth = null;
        IReadOnlyList<int>? lines = null;
        string source;
        if (data is null or "-")
        {
            source = "standard input";
            var read = new List<string>();
            for (var line = Console.In.ReadLine(); line is not null; line = Console.In.ReadLine())
                if (!string.IsNullOrWhiteSpace(line)) read.Add(line);
            if (read.Count == 0) throw new UsageException("standard input: no text to classify (one text per line expected).");
            texts = read;
        }
        else
        {
            source = data;
            var table = TextTableReader.Read(data, format);
            texts = table.Texts(textColumn, "--text-column");
            lines = table.Lines;
            if (table.Columns.Contains(labelColumn, StringComparer.Ordinal))
                truth = table.Rows.Select(r => r.TryGetValue(labelColumn, out var l) && l.Trim().Length > 0 ? l.Trim() : null).ToArray();
        }
        var labels = onnx?.Labels ?? manifest!.Labels;
        int maxLength = onnx?.MaxLength ?? manifest!.Tokenizer.MaxLength;
        var tokenizer = MiniLmTokenizer.FromPackage(maxLength);
        float[][] probabilities;
        int truncated;
        if (onnx is not null)
        {
            probabilities = onnx.Run(texts);
            truncated = texts.Count(t => tokenizer.Encode(t).Length >= maxLength);
        }
        else
        {
            var examples = new EncodedExamples(tokenizer, texts, new int[texts.Count]);
            using (var model = TextRunFiles.LoadClassifier(run!, manifest!))
                (_, probabilities) = TextClassifierTrainer.Evaluate(model, examples);
            truncated = examples.Lengths.Count(l => l >= maxLength);
        }
        var modelName = onnx is null ? $"{run} ({manifest!.Method})" : $"{onnx.Directory} (ONNX Runtime)";

        if (outputPath is null)
        {
            using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false));
            RunFolderWriter.WritePredictionsCsv(stdout, labels, texts, truth, lines, probabilities);
        }
        else
        {
            var temp = outputPath + ".partial";
            using (var stream = File.Create(temp))
            {
                if (FormatOf(outputPath) == TextTableFormat.JsonLines)
                    RunFolderWriter.WritePredictionsJsonLines(stream, labels, texts, truth, lines, probabilities);
                else
                {
                    using var writer = new StreamWriter(stream, new UTF8Encoding(false));
                    RunFolderWriter.WritePredictionsCsv(writer, labels, texts, truth, lines, probabilities);
                }
            }
            File.Move(temp, outputPath, overwrite: true);
        }
        console.MarkupLine(Markup.Escape($"{texts.Count} text(s) from {source} classified with {modelName}; " +
            $"{truncated} reach max length {maxLength} and are truncated." +
            (outputPath is null ? "" : $" Predictions: {outputPath}.")));

        if (truth is null || truth.All(t => t is null)) return 0;
        var index = labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        var predicted = TextClassifierTrainer.ArgMax(probabilities);
        var scoredTruth = new List<int>();
        var scoredPredicted = new List<int>();
        var unknown = new SortedDictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < texts.Count; i++)
        {
            if (truth[i] is not { } label) continue;
            if (index.TryGetValue(label, out var c)) { scoredTruth.Add(c); scoredPredicted.Add(predicted[i]); }
            else unknown[label] = unknown.GetValueOrDefault(label) + 1;
        }
        ClassificationMetrics? result = scoredTruth.Count > 0 ? ClassificationMetrics.Compute(scoredTruth, scoredPredicted, labels.Count) : null;
        if (result is not null)
        {
            console.MarkupLine(Markup.Escape($"Accuracy {100 * result.Accuracy:F1} %, macro-F1 {result.MacroF1:F3} over {result.Count} labelled text(s)."));
            var table = new Table().Title("confusion matrix (rows: true label, columns: predicted)").AddColumn("");
            foreach (var l in labels) table.AddColumn(Markup.Escape(l));
            for (int r = 0; r < labels.Count; r++)
                table.AddRow(new[] { Markup.Escape(labels[r]) }.Concat(result.Confusion[r].Select(v => v.ToString(System.Globalization.CultureInfo.InvariantCulture))).ToArray());
            console.Write(table);
        }
        if (unknown.Count > 0)
            console.MarkupLine($"[yellow]{Markup.Escape($"{unknown.Values.Sum()} text(s) have labels the run was never trained on, not scored: {string.Join(", ", unknown.Select(kv => $"'{kv.Key}' ×{kv.Value}"))}.")}[/]");
        if (metricsPath is not null)
        {
            WriteMetrics(metricsPath, new PredictionMetrics
            {
                Run = Path.GetFullPath(run ?? engine.OnnxFolder!),
                Data = source,
                Labels = labels,
                Scored = scoredTruth.Count,
                UnknownLabels = unknown,
                Classification = result,
            });
            console.MarkupLine(Markup.Escape($"Metrics: {metricsPath}."));
        }
        return 0;
    }

    private static int Similarity(ModelSource engine, string? run, string? data, TextTableFormat? format, string queryColumn, string documentColumn,
        string? outputPath, string? metricsPath, int? maxLength, IAnsiConsole console)
    {
        if (data is null or "-") throw new UsageException("--data is required for --task similarity: a file of (query, document) pairs.");
        TextRunManifest? manifest = run is null ? null : TextRunFiles.ReadManifest(run, "similarity");
        using var onnx = engine.OnnxFolder is null ? null : engine.Open(OnnxModelKind.Embedding);
        int? trainedLength = onnx?.MaxLength ?? manifest?.Tokenizer.MaxLength;
        if (trainedLength is not null && maxLength is not null && maxLength != trainedLength)
            throw new UsageException($"--max-length {maxLength}: the model {run ?? engine.OnnxFolder} was trained with {trainedLength}; leave --max-length out.");
        var pairs = TextPairs.From(TextTableReader.Read(data, format), queryColumn, documentColumn);
        var tokenizer = MiniLmTokenizer.FromPackage(trainedLength ?? maxLength ?? MiniLmTokenizer.DefaultMaxLength);
        var (documents, relevant) = pairs.Candidates();
        var queries = TextSimilarityTrainer.Encode(tokenizer, pairs.Queries);
        var docs = TextSimilarityTrainer.Encode(tokenizer, documents);
        float[,] pretrainedScores;
        using (var pretrained = MiniLmWeights.LoadPretrained())
            pretrainedScores = TextSimilarityTrainer.Scores(TextSimilarityTrainer.EmbedAll(pretrained, queries), TextSimilarityTrainer.EmbedAll(pretrained, docs));
        var before = RankingMetrics.Compute(pretrainedScores, relevant);
        RankingMetrics? after = null;
        float[,] scores = pretrainedScores;
        if (manifest is not null)
        {
            using var encoder = TextRunFiles.LoadEncoder(run!, manifest);
            scores = TextSimilarityTrainer.Scores(TextSimilarityTrainer.EmbedAll(encoder, queries), TextSimilarityTrainer.EmbedAll(encoder, docs));
            after = RankingMetrics.Compute(scores, relevant);
        }
        else if (onnx is not null)
        {
            scores = TextSimilarityTrainer.Scores([.. onnx.Embed(pairs.Queries)], [.. onnx.Embed(documents)]);
            after = RankingMetrics.Compute(scores, relevant);
        }
        var ranks = RankingMetrics.Ranks(scores, relevant);
        var sb = new StringBuilder("line,query,rank_of_document,top_document,top_score\r\n");
        for (int i = 0; i < pairs.Count; i++)
        {
            int top = 0;
            for (int j = 1; j < documents.Count; j++) if (scores[i, j] > scores[i, top]) top = j;
            sb.Append($"{pairs.Lines[i]},{RunFolderWriter.Quote(pairs.Queries[i])},{ranks[i]},{RunFolderWriter.Quote(documents[top])},{scores[i, top].ToString("R", System.Globalization.CultureInfo.InvariantCulture)}\r\n");
        }
        if (outputPath is null) Console.Out.Write(sb.ToString());
        else
        {
            File.WriteAllText(outputPath + ".partial", sb.ToString(), new UTF8Encoding(false));
            File.Move(outputPath + ".partial", outputPath, overwrite: true);
        }
        console.Write(TrainCommand.RankingTable($"{pairs.Count} queries, each ranking the file's {documents.Count} documents", before, after, manifest?.Method ?? (onnx is null ? "" : "onnx")));
        if (metricsPath is not null)
        {
            WriteMetrics(metricsPath, new PredictionMetrics { Run = (run ?? engine.OnnxFolder) is { } used ? Path.GetFullPath(used) : "pretrained", Data = data, Ranking = after ?? before, PretrainedRanking = before });
            console.MarkupLine(Markup.Escape($"Metrics: {metricsPath}."));
        }
        return 0;
    }

    private static void WriteMetrics(string path, PredictionMetrics metrics)
    {
        File.WriteAllBytes(path + ".partial", JsonSerializer.SerializeToUtf8Bytes(metrics, RunFolderWriter.Json.PredictionMetrics));
        File.Move(path + ".partial", path, overwrite: true);
    }
}
