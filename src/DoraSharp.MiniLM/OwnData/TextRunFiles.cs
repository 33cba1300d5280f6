using System.Text.Json;
using DoraSharp.IO;
using DoraSharp.MiniLM.Classification;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// The weights of a `dora train` run folder, written and read back. What is saved depends on the method:
/// LoRA/DoRA: <c>adapter/</c> in PEFT's format (<c>adapter_config.json</c>, <c>adapter_model.safetensors</c>), the
/// classification head inside it as <c>modules_to_save</c>; frozen: <c>head.safetensors</c>; full:
/// <c>model.safetensors</c> (every weight). <c>run.json</c> (<see cref="TextRunManifest"/>) says which.
/// </summary>
public static class TextRunFiles
{
    /// <summary>The manifest.</summary>
    public const string ManifestFile = "run.json";
    /// <summary>Per-epoch history and final metrics.</summary>
    public const string ResultsFile = "results.json";
    /// <summary>PEFT adapter folder (LoRA, DoRA).</summary>
    public const string AdapterFolder = "adapter";
    /// <summary>The head alone (frozen).</summary>
    public const string HeadFile = "head.safetensors";
    /// <summary>Every weight (full).</summary>
    public const string ModelFile = "model.safetensors";
    /// <summary>The human-readable description.</summary>
    public const string ReadmeFile = "README.txt";
    /// <summary>The validation examples as used (JSON Lines).</summary>
    public const string ValidationDataFile = "validation.jsonl";
    /// <summary>The run's predictions on <see cref="ValidationDataFile"/>, with the kept weights.</summary>
    public const string ValidationPredictionsFile = "validation_predictions.jsonl";

    /// <summary>
    /// Writes the trained weights of <paramref name="model"/> into <paramref name="folder"/> and returns
    /// file → description for the manifest. <paramref name="model"/> is a <see cref="SentenceClassifier"/>
    /// (classification) or a <see cref="BertEncoder"/> (similarity).
    /// </summary>
    public static Dictionary<string, string> SaveWeights(string folder, FineTuningMethod method, nn.Module model, LoraModel? adapters)
    {
        var files = new Dictionary<string, string>(StringComparer.Ordinal);
        bool classifier = model is SentenceClassifier;
        switch (method)
        {
            case FineTuningMethod.Lora:
            case FineTuningMethod.Dora:
                adapters!.SaveAdapter(Path.Combine(folder, AdapterFolder), new AdapterSaveOptions
                {
                    BaseModelNameOrPath = "sentence-transformers/all-MiniLM-L6-v2",
                    // The similarity adapter sits on the encoder itself: Hugging Face BertModel's paths, as `dora minilm-demo`.
                    AutoMapping = classifier ? null : new PeftAutoMapping("BertModel", "transformers.models.bert.modeling_bert"),
                });
                files[AdapterFolder + "/"] = classifier
                    ? "PEFT adapter (adapter_config.json, adapter_model.safetensors) over a model whose 'bert' is Hugging Face's BertModel and whose 'classifier' is Linear(384, classes) on the mean-pooled last hidden state; the head is saved in it as modules_to_save (keys base_model.model.classifier.weight/bias)"
                    : "PEFT adapter (adapter_config.json, adapter_model.safetensors) for Hugging Face's BertModel (keys base_model.model.encoder.layer.N...)";
                // Listed one by one too, so that a reader finds a missing file by the manifest alone.
                files[AdapterFolder + "/adapter_config.json"] = "PEFT's adapter configuration (r, lora_alpha, target_modules, use_dora, modules_to_save)";
                files[AdapterFolder + "/adapter_model.safetensors"] = "the adapter weights, PEFT's keys";
                break;
            case FineTuningMethod.Frozen:
                SafetensorsFile.Write(Path.Combine(folder, HeadFile), ((SentenceClassifier)model).Head.state_dict()
                    .Select(kv => KeyValuePair.Create(TextClassifierTrainer.HeadName + "." + kv.Key, kv.Value)));
                files[HeadFile] = "the classification head, Linear(384, classes): classifier.weight, classifier.bias (the encoder is the pretrained one)";
                break;
            default:
                SafetensorsFile.Write(Path.Combine(folder, ModelFile), model.state_dict());
                files[ModelFile] = classifier
                    ? "every weight: bert.* (Hugging Face BertModel names) and classifier.weight/bias"
                    : "every weight of the fine-tuned encoder (Hugging Face BertModel names)";
                break;
        }
        return files;
    }

    /// <summary>
    /// Reads and checks <c>run.json</c> of <paramref name="folder"/>: the format, its version, the task and that
    /// every file it lists is there. Errors name the folder and what is wrong.
    /// </summary>
    public static TextRunManifest ReadManifest(string folder, string expectedTask)
    {
        if (!Directory.Exists(folder)) throw new DataFileException($"--run {folder}: no such folder.");
        var path = Path.Combine(folder, ManifestFile);
        if (!File.Exists(path))
            throw new DataFileException($"--run {folder}: no {ManifestFile}; not a `dora train` run folder (or a half-written one: `dora train` only ever renames a finished run into place).");
        TextRunManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize(File.ReadAllBytes(path), OwnDataJson.Default.TextRunManifest)
                ?? throw new JsonException("null");
        }
        catch (JsonException e)
        {
            throw new DataFileException($"{path}: not a valid run manifest ({e.Message.Split(" Path:")[0].TrimEnd('.')}).");
        }
        if (manifest.Format != TextRunManifest.FormatName)
            throw new DataFileException($"{path}: format '{manifest.Format}', expected '{TextRunManifest.FormatName}'.");
        if (manifest.FormatVersion != TextRunManifest.CurrentVersion)
            throw new DataFileException($"{path}: format_version {manifest.FormatVersion}, but this dora reads version {TextRunManifest.CurrentVersion}; use the dora that wrote the run.");
        if (manifest.Task != expectedTask)
            throw new DataFileException($"--run {folder}: a {manifest.Task} run, but --task is {expectedTask}.");
        foreach (var file in manifest.Files.Keys)
        {
            var full = Path.Combine(folder, file.TrimEnd('/'));
            if (!(file.EndsWith('/') ? Directory.Exists(full) : File.Exists(full)))
                throw new DataFileException($"--run {folder}: {ManifestFile} lists '{file}' but it is missing; the run folder is incomplete.");
        }
        if (manifest.Task == "classification" && manifest.Labels.Count < 2)
            throw new DataFileException($"{path}: a classification run needs at least 2 labels, it lists {manifest.Labels.Count}.");
        return manifest;
    }

    /// <summary>The classifier of a classification run, in eval mode, weights as saved.</summary>
    public static SentenceClassifier LoadClassifier(string folder, TextRunManifest manifest)
    {
        var method = ParseMethod(manifest.Method, folder);
        var model = new SentenceClassifier(MiniLmWeights.LoadPretrained(), manifest.Labels.Count);
        try
        {
            LoadInto(folder, method, model);
            model.eval();
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The encoder of a similarity run, in eval mode, weights as saved.</summary>
    public static BertEncoder LoadEncoder(string folder, TextRunManifest manifest)
    {
        var method = ParseMethod(manifest.Method, folder);
        var encoder = MiniLmWeights.LoadPretrained();
        try
        {
            LoadInto(folder, method, encoder);
            encoder.eval();
            return encoder;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    private static void LoadInto(string folder, FineTuningMethod method, nn.Module model)
    {
        switch (method)
        {
            case FineTuningMethod.Lora:
            case FineTuningMethod.Dora:
                // The adapter's own loader validates config, keys and shapes against the model before changing it.
                LoraModel.LoadAdapter(model, Path.Combine(folder, AdapterFolder));
                break;
            case FineTuningMethod.Frozen:
                CopyTensors(Path.Combine(folder, HeadFile), model, onlyPrefix: TextClassifierTrainer.HeadName + ".");
                break;
            default:
                CopyTensors(Path.Combine(folder, ModelFile), model, onlyPrefix: null);
                break;
        }
    }

    /// <summary>Copies every tensor of the file into the parameter or buffer of that name, after checking names and shapes.</summary>
    private static void CopyTensors(string path, nn.Module model, string? onlyPrefix)
    {
        using var content = SafetensorsFile.Read(path);
        var targets = model.state_dict().Where(kv => onlyPrefix is null || kv.Key.StartsWith(onlyPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        var missing = targets.Keys.Where(k => !content.Tensors.ContainsKey(k)).ToArray();
        if (missing.Length > 0) throw new DataFileException($"{path}: missing tensor(s) {string.Join(", ", missing.Take(5))}.");
        foreach (var (name, tensor) in content.Tensors)
        {
            if (!targets.TryGetValue(name, out var target))
                throw new DataFileException($"{path}: tensor '{name}' is not a weight of the model.");
            if (!target.shape.SequenceEqual(tensor.shape))
                throw new DataFileException($"{path}: tensor '{name}' has shape [{string.Join(", ", tensor.shape)}], the model's is [{string.Join(", ", target.shape)}].");
        }
        using var noGrad = no_grad();
        foreach (var (name, tensor) in content.Tensors) targets[name].copy_(tensor);
    }

    private static FineTuningMethod ParseMethod(string name, string folder) =>
        FineTuningMethods.All.FirstOrDefault(m => m.Key() == name) is var m && m.Key() == name
            ? m : throw new DataFileException($"--run {folder}: unknown method '{name}' in {ManifestFile}.");
}
