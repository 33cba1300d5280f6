using System.Text.Json;
using Microsoft.ML.OnnxRuntime;

namespace DoraSharp.Onnx;

/// <summary>
/// A model folder written by <c>dora export</c>, loaded for inference with ONNX Runtime: it tokenizes texts, runs the
/// graph in batches and returns class probabilities (<see cref="OnnxModelKind.Classification"/>) or unit-length
/// sentence embeddings (<see cref="OnnxModelKind.Embedding"/>). Thread-safe after loading (ONNX Runtime's
/// <see cref="InferenceSession.Run(IReadOnlyCollection{NamedOnnxValue})"/> is). Dispose it to free the native session.
/// </summary>
/// <example>
/// <code>
/// using var model = OnnxTextModel.Load("my-model");
/// TextPrediction p = model.Classify(["printer driver for Linux"])[0];
/// </code>
/// </example>
public sealed class OnnxTextModel : IDisposable
{
    private readonly InferenceSession session;
    private readonly BertWordPieceTokenizer tokenizer;
    private readonly OnnxModelManifest manifest;
    private readonly int batchSize;

    private OnnxTextModel(string directory, OnnxModelManifest manifest, BertWordPieceTokenizer tokenizer, InferenceSession session, int batchSize)
    {
        Directory = directory;
        this.manifest = manifest;
        this.tokenizer = tokenizer;
        this.session = session;
        this.batchSize = batchSize;
        Kind = manifest.Kind == "classification" ? OnnxModelKind.Classification : OnnxModelKind.Embedding;
    }

    /// <summary>The model folder (full path).</summary>
    public string Directory { get; }

    /// <summary>Whether <see cref="Classify"/> or <see cref="Embed"/> applies.</summary>
    public OnnxModelKind Kind { get; }

    /// <summary>The class labels, index = probability column; empty for an embedding model.</summary>
    public IReadOnlyList<string> Labels => manifest.Labels;

    /// <summary>Tokens per text, [CLS] and [SEP] included; longer texts are cut (their tail is not seen).</summary>
    public int MaxLength => manifest.MaxLength;

    /// <summary>Width of one result: the number of labels, or the embedding size.</summary>
    public int OutputSize => manifest.OutputSize;

    /// <summary>
    /// Opens the folder <paramref name="directory"/> (<c>model.json</c>, <c>model.onnx</c>, <c>vocab.txt</c>,
    /// <c>tokenizer_config.json</c>). <paramref name="threads"/> caps ONNX Runtime's intra-op threads (0: its default,
    /// one per core); <paramref name="batchSize"/> is how many texts go through the graph at once.
    /// </summary>
    /// <exception cref="OnnxModelException">A file is missing, unreadable, of an unknown format version, or
    /// disagrees with <c>model.json</c>; the message names the file.</exception>
    public static OnnxTextModel Load(string directory, int threads = 0, int batchSize = 32)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentOutOfRangeException.ThrowIfNegative(threads);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var full = Path.GetFullPath(directory);
        if (!System.IO.Directory.Exists(full)) throw new OnnxModelException($"{full}: no such folder (give the folder `dora export` wrote).");
        var manifest = ReadJson(Path.Combine(full, OnnxModelManifest.FileName), OnnxModelJson.Default.OnnxModelManifest);
        var manifestPath = Path.Combine(full, OnnxModelManifest.FileName);
        if (manifest.Format != OnnxModelManifest.FormatName)
            throw new OnnxModelException($"{manifestPath}: format '{manifest.Format}', expected '{OnnxModelManifest.FormatName}'.");
        if (manifest.FormatVersion != OnnxModelManifest.CurrentVersion)
            throw new OnnxModelException($"{manifestPath}: format_version {manifest.FormatVersion}, but this DoraSharp.Onnx reads version {OnnxModelManifest.CurrentVersion}; use the version that matches the dora that exported it.");
        if (manifest.Kind is not ("classification" or "embedding"))
            throw new OnnxModelException($"{manifestPath}: kind '{manifest.Kind}', expected 'classification' or 'embedding'.");
        if (manifest.Kind == "classification" && (manifest.Labels.Count < 2 || manifest.Labels.Count != manifest.OutputSize))
            throw new OnnxModelException($"{manifestPath}: a classification model needs at least 2 labels and output_size equal to their count; it has {manifest.Labels.Count} label(s) and output_size {manifest.OutputSize}.");
        var configPath = Path.Combine(full, manifest.TokenizerConfig);
        var config = ReadJson(configPath, OnnxModelJson.Default.BertTokenizerConfig);
        if (config.ModelMaxLength != manifest.MaxLength)
            throw new OnnxModelException($"{configPath}: model_max_length {config.ModelMaxLength}, but {manifestPath} says max_length {manifest.MaxLength}.");
        var vocabulary = Path.Combine(full, manifest.Vocabulary);
        if (!File.Exists(vocabulary)) throw new OnnxModelException($"{vocabulary}: missing; the model folder is incomplete.");
        var tokenizer = BertWordPieceTokenizer.Create(vocabulary, configPath, config, manifest.MaxLength);

        var modelPath = Path.Combine(full, manifest.ModelFile);
        if (!File.Exists(modelPath)) throw new OnnxModelException($"{modelPath}: missing; the model folder is incomplete.");
        using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
        InferenceSession session;
        try { session = new InferenceSession(modelPath, options); }
        catch (OnnxRuntimeException e) { throw new OnnxModelException($"{modelPath}: ONNX Runtime cannot load it ({e.Message.ReplaceLineEndings(" ")}).", e); }
        try
        {
            CheckGraph(session, manifest, modelPath);
            return new OnnxTextModel(full, manifest, tokenizer, session, batchSize);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Class probabilities and the most probable label of each text, in order. Only for
    /// <see cref="OnnxModelKind.Classification"/> models.
    /// </summary>
    public IReadOnlyList<TextPrediction> Classify(IReadOnlyList<string> texts)
    {
        if (Kind != OnnxModelKind.Classification)
            throw new InvalidOperationException($"OnnxTextModel: {Directory} is an embedding model; call Embed, not Classify.");
        return Run(texts).Select(p => new TextPrediction(Labels[ArgMax(p)], p)).ToArray();
    }

    /// <summary>
    /// Unit-length sentence embeddings, one <see cref="OutputSize"/>-float row per text; the cosine similarity of two
    /// texts is the dot product of their rows. Only for <see cref="OnnxModelKind.Embedding"/> models.
    /// </summary>
    public IReadOnlyList<float[]> Embed(IReadOnlyList<string> texts)
    {
        if (Kind != OnnxModelKind.Embedding)
            throw new InvalidOperationException($"OnnxTextModel: {Directory} is a classification model; call Classify, not Embed.");
        return Run(texts);
    }

    /// <summary>
    /// The token ids the model sees for <paramref name="text"/>: [CLS], at most <see cref="MaxLength"/> - 2 word pieces,
    /// [SEP] (Hugging Face's BERT tokenizer of all-MiniLM-L6-v2), for inspecting what a long text loses.
    /// </summary>
    public int[] Tokenize(string text) => tokenizer.Encode(text);

    /// <summary>
    /// The graph's raw output for each text, in order: probabilities or embeddings depending on <see cref="Kind"/>.
    /// </summary>
    public float[][] Run(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        for (int i = 0; i < texts.Count; i++)
            if (texts[i] is null) throw new ArgumentException($"OnnxTextModel: text {i} is null.", nameof(texts));
        var results = new float[texts.Count][];
        for (int start = 0; start < texts.Count; start += batchSize)
        {
            var chunk = texts.Skip(start).Take(batchSize).ToArray();
            var rows = RunBatch(chunk);
            rows.CopyTo(results, start);
        }
        return results;
    }

    private float[][] RunBatch(IReadOnlyList<string> texts)
    {
        var (ids, mask, types, length) = tokenizer.EncodeBatch(texts);
        long[] shape = [texts.Count, length];
        using var idsValue = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var maskValue = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var typesValue = OrtValue.CreateTensorValueFromMemory(types, shape);
        var inputs = new Dictionary<string, OrtValue>
        {
            [manifest.Inputs[0]] = idsValue,
            [manifest.Inputs[1]] = maskValue,
            [manifest.Inputs[2]] = typesValue,
        };
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, inputs, [manifest.Output]);
        var flat = outputs[0].GetTensorDataAsSpan<float>();
        var rows = new float[texts.Count][];
        for (int r = 0; r < rows.Length; r++) rows[r] = flat.Slice(r * OutputSize, OutputSize).ToArray();
        return rows;
    }

    private static void CheckGraph(InferenceSession session, OnnxModelManifest manifest, string modelPath)
    {
        if (manifest.Inputs.Count != 3 || manifest.Inputs.Any(i => !session.InputMetadata.ContainsKey(i)))
            throw new OnnxModelException($"{modelPath}: graph inputs [{string.Join(", ", session.InputMetadata.Keys)}], but model.json names [{string.Join(", ", manifest.Inputs)}].");
        if (!session.OutputMetadata.TryGetValue(manifest.Output, out var output))
            throw new OnnxModelException($"{modelPath}: graph outputs [{string.Join(", ", session.OutputMetadata.Keys)}], but model.json names '{manifest.Output}'.");
        if (output.Dimensions.Length != 2 || output.Dimensions[1] != manifest.OutputSize)
            throw new OnnxModelException($"{modelPath}: output '{manifest.Output}' has shape [{string.Join(", ", output.Dimensions)}], expected [batch, {manifest.OutputSize}] as model.json says.");
    }

    private static T ReadJson<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        if (!File.Exists(path)) throw new OnnxModelException($"{path}: missing; not a folder written by `dora export` (or an incomplete one).");
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllBytes(path), type) ?? throw new JsonException("the file holds null");
        }
        catch (JsonException e)
        {
            throw new OnnxModelException($"{path}: not valid ({e.Message.Split(" Path:")[0].TrimEnd('.')}).", e);
        }
    }

    private static int ArgMax(float[] row)
    {
        int best = 0;
        for (int i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    /// <summary>Releases the ONNX Runtime session.</summary>
    public void Dispose() => session.Dispose();
}
