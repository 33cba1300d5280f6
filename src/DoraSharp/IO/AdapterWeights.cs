using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>
/// The tensors of an <c>adapter_model.safetensors</c>, checked against an <see cref="AdapterLayout"/> and held until
/// they are copied into an adapter (<see cref="CopyInto"/>). Disposing frees the file's tensors.
/// </summary>
internal sealed class AdapterWeights : IDisposable
{
    private readonly SafetensorsContent _content;
    private readonly AdapterLayout _layout;
    private readonly Dictionary<(string Path, AdapterTensorKind Kind), Tensor> _tensors;
    private readonly Dictionary<(string Path, string Name), Tensor> _saved;

    private AdapterWeights(SafetensorsContent content, AdapterLayout layout,
        Dictionary<(string Path, AdapterTensorKind Kind), Tensor> tensors, Dictionary<(string Path, string Name), Tensor> saved)
    {
        _content = content;
        _layout = layout;
        _tensors = tensors;
        _saved = saved;
    }

    /// <summary>Reads <paramref name="tensorsPath"/> and checks it against <paramref name="layout"/> (keys, dtypes, shapes).</summary>
    /// <exception cref="AdapterFormatException">The file is malformed, or a dtype or a shape disagrees with r.</exception>
    /// <exception cref="AdapterMismatchException">A key is missing or unexpected, or a shape disagrees with its layer.</exception>
    public static AdapterWeights Read(string tensorsPath, AdapterLayout layout) => Read(tensorsPath, layout, check: null);

    /// <summary>
    /// As <see cref="Read(string, AdapterLayout)"/>; <paramref name="check"/> runs on the file's tensors before they are
    /// checked against <paramref name="layout"/> (a weights-only load first checks them against the file's own plan).
    /// </summary>
    public static AdapterWeights Read(string tensorsPath, AdapterLayout layout, Action<IReadOnlyDictionary<string, Tensor>>? check)
    {
        SafetensorsContent content = SafetensorsFile.Read(tensorsPath);
        try
        {
            check?.Invoke(content.Tensors);
            var tensors = AdapterTensorValidator.Validate(content.Tensors, layout, tensorsPath);
            var saved = AdapterTensorValidator.ValidateSavedModules(content.Tensors, layout, tensorsPath);
            return new AdapterWeights(content, layout, tensors, saved);
        }
        catch
        {
            content.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Copies the file's values into <paramref name="adapter"/>, whose layout must be the one the file was checked
    /// against; <c>copy_</c> converts the file's dtype to the adapter's (float32 for a half-precision base, as PEFT's
    /// autocast_adapter_dtype keeps it) without an intermediate copy.
    /// </summary>
    public void CopyInto(AdapterState adapter)
    {
        using (no_grad())
        {
            foreach (AdapterSlot slot in _layout.Slots)
            {
                var layer = adapter.Layers[slot.Path];
                layer.LoraA.copy_(_tensors[(slot.Path, AdapterTensorKind.LoraA)]);
                layer.LoraB.copy_(_tensors[(slot.Path, AdapterTensorKind.LoraB)]);
                if (_layout.UseDora) layer.Magnitude!.copy_(_tensors[(slot.Path, AdapterTensorKind.Magnitude)]);
            }
            foreach (SavedModuleSlot module in _layout.SavedModules)
            {
                var values = adapter.SavedValues(module.Path);
                foreach (var name in module.Entries.Keys) values[name].copy_(_saved[(module.Path, name)]);
            }
        }
    }

    /// <summary>Frees the file's tensors.</summary>
    public void Dispose() => _content.Dispose();
}
