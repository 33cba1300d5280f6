using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>
/// Saves and loads a model's own weights — its state dict without any adapter tensors — as a safetensors file
/// with PyTorch's state-dict names (<c>layers.0.weight</c>, …), the file <c>safetensors.torch.save_file(model.state_dict())</c>
/// writes. With an adapter directory this restores a whole adapted model: load the base weights, then the adapter.
/// </summary>
/// <remarks>
/// A model with adapters attached keeps its base names (an adapter registers the base layer's <c>weight</c> and
/// <c>bias</c> under their own names), so the same file loads into the model before or after
/// <c>LoraModel.Wrap</c>. Adapter tensors (<c>lora_A.weight</c>, <c>lora_B.weight</c>,
/// <c>lora_embedding_A</c>, <c>lora_embedding_B</c>, <c>lora_magnitude_vector</c>) are neither saved nor expected here:
/// they live in the adapter files. A module of <see cref="LoraConfig.ModulesToSave"/> holds the active adapter's
/// copy of its values while adapters are enabled; save or load the base weights inside
/// <c>using (lora.DisableAdapters())</c>, where it holds the original values.
/// </remarks>
public static class BaseWeightsFile
{
    private static readonly IReadOnlyDictionary<string, string> PeftMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    /// <summary>Writes the base weights and buffers of <paramref name="model"/> to <paramref name="path"/>, atomically.</summary>
    /// <exception cref="InvalidOperationException">An adapter is merged, so the weights are not the base weights.</exception>
    /// <exception cref="IOException">The file could not be written; any previous file is unchanged.</exception>
    public static void Save(nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var state = BaseState(model, "save");
        var detached = state.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach())).ToList();
        try
        {
            SafetensorsFile.Write(path, detached, PeftMetadata);
        }
        finally
        {
            detached.ForEach(kv => kv.Value.Dispose());
        }
    }

    /// <summary>
    /// Loads the base weights in <paramref name="path"/> into <paramref name="model"/>: every key of the model's
    /// base state dict must be in the file with the same shape, and nothing else. Floating-point tensors are
    /// converted to the parameter's dtype (as PyTorch's <c>load_state_dict</c> does); other dtypes must match.
    /// Everything is checked before anything is written, so a failed load changes nothing.
    /// </summary>
    /// <exception cref="AdapterFormatException">The file is not a valid safetensors file.</exception>
    /// <exception cref="AdapterMismatchException">A key is missing or unexpected, or a shape or dtype does not fit.</exception>
    /// <exception cref="InvalidOperationException">An adapter is merged; unmerge it first.</exception>
    public static void Load(nn.Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var state = BaseState(model, "load into");
        using SafetensorsContent content = SafetensorsFile.Read(path);

        foreach (string key in content.Tensors.Keys)
        {
            if (state.ContainsKey(key)) continue;
            string why = AdapterKeys.TryParse(key, out _, out _) || key.StartsWith(AdapterKeys.Prefix, StringComparison.Ordinal)
                ? $"it has PEFT's '{AdapterKeys.Prefix}' prefix; a base weights file uses the model's own state-dict names, and adapters load with LoraModel.LoadAdapter"
                : "the model's state dict has no such entry: the file is for a different architecture";
            throw new AdapterMismatchException(path, $"unexpected key {DisplayText.Quote(key)}: {why}", key);
        }
        foreach ((string key, Tensor target) in state)
        {
            if (!content.Tensors.TryGetValue(key, out Tensor? source))
            {
                throw new AdapterMismatchException(path, $"missing key {DisplayText.Quote(key)}: the model has it ({target.dtype}, shape {SafetensorsHeaderParser.FormatShape(target.shape)}) and a base weights file must hold every entry", key);
            }
            if (!source.shape.SequenceEqual(target.shape))
            {
                throw new AdapterMismatchException(path, $"tensor {DisplayText.Quote(key)} has shape {SafetensorsHeaderParser.FormatShape(source.shape)}, but the model's has shape {SafetensorsHeaderParser.FormatShape(target.shape)}", key);
            }
            if (source.dtype != target.dtype && !(source.is_floating_point() && target.is_floating_point()))
            {
                throw new AdapterMismatchException(path, $"tensor {DisplayText.Quote(key)} has dtype {source.dtype}, which cannot be loaded into the model's {target.dtype} entry", key);
            }
        }

        using (no_grad())
        {
            foreach ((string key, Tensor target) in state) target.copy_(content.Tensors[key]);
        }
        // DoRA layers cache their weight norms in eval mode; the weights changed in place under them.
        foreach ((_, nn.Module module) in ModuleSurgery.Descendants(model))
        {
            if (module is LoraLayer layer) layer.InvalidateCache();
        }
        if (model is LoraLayer self) self.InvalidateCache();
    }

    /// <summary>The model's state dict without adapter tensors; the values alias the live parameters and buffers.</summary>
    private static Dictionary<string, Tensor> BaseState(nn.Module model, string verb)
    {
        var adapterKeys = new HashSet<string>(StringComparer.Ordinal);
        var layers = ModuleSurgery.Descendants(model).Prepend(("", model));
        foreach ((string path, nn.Module module) in layers)
        {
            if (module is not LoraLayer layer) continue;
            if (layer.IsMerged)
            {
                throw new InvalidOperationException(
                    $"The adapter at '{path}' is merged, so its weight is not the base weight; Unmerge() before you {verb} base weights.");
            }
            foreach ((string name, _) in layer.AdapterParameters())
            {
                adapterKeys.Add(path.Length == 0 ? name : path + "." + name);
            }
        }
        return model.state_dict()
            .Where(kv => !adapterKeys.Contains(kv.Key))
            .ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
    }
}
