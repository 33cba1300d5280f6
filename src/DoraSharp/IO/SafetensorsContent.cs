using TorchSharp;

namespace DoraSharp.IO;

/// <summary>
/// What <see cref="SafetensorsFile.Read(string)"/> returns: the file's tensors and its <c>__metadata__</c> map.
/// Disposing it disposes the tensors still in <see cref="Tensors"/>.
/// </summary>
public sealed class SafetensorsContent : IDisposable
{
    internal SafetensorsContent(OrderedDictionary<string, torch.Tensor> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>
    /// The tensors by name, in the order of their bytes in the file (for files written by Hugging Face or by
    /// <see cref="SafetensorsFile.Write(string, IEnumerable{KeyValuePair{string, torch.Tensor}}, IReadOnlyDictionary{string, string})"/>: by dtype, widest first, then by name). Each is a CPU tensor of the
    /// file's dtype and shape that owns its storage. Remove a tensor from this dictionary to take ownership of
    /// it; whatever is left is disposed with this object.
    /// </summary>
    public OrderedDictionary<string, torch.Tensor> Tensors { get; }

    /// <summary>
    /// The header's <c>__metadata__</c> map, enumerated in file order; null when the file has none
    /// (distinct from an empty map, which round-trips as <c>"__metadata__":{}</c>).
    /// </summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; }

    /// <summary>Disposes every tensor still in <see cref="Tensors"/> and empties it.</summary>
    public void Dispose()
    {
        foreach (torch.Tensor tensor in Tensors.Values)
        {
            tensor.Dispose();
        }
        Tensors.Clear();
    }
}
