namespace DoraSharp.IO;

/// <summary>A validated safetensors header: the tensors and the optional <c>__metadata__</c> map.</summary>
/// <param name="Tensors">
/// The tensors in data-buffer order. Validation guarantees they tile the buffer exactly: the first begins at
/// 0, each begins where the previous ended, and the last ends at the end of the file.
/// </param>
/// <param name="Metadata">The <c>__metadata__</c> map in header order, or null when the header has none.</param>
internal sealed record SafetensorsHeader(
    IReadOnlyList<SafetensorsTensorInfo> Tensors,
    IReadOnlyDictionary<string, string>? Metadata);
