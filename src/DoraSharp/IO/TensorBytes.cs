using TorchSharp;

namespace DoraSharp.IO;

/// <summary>
/// Moves the raw bytes of a CPU, contiguous tensor between its storage and a stream, in chunks.
/// </summary>
/// <remarks>
/// TorchSharp exposes a tensor's storage only as a <see cref="Span{T}"/> (<c>Tensor.bytes</c>), which cannot
/// exceed 2^31-1 bytes; walking the flattened tensor in narrowed views keeps each span small, so there is no
/// size limit and no intermediate byte[] as large as the tensor.
/// </remarks>
internal static class TensorBytes
{
    /// <summary>The chunk size used outside tests: large enough that per-chunk overhead is negligible.</summary>
    public const int DefaultChunkBytes = 16 << 20;

    /// <summary>Receives one chunk of a tensor's storage.</summary>
    public delegate void ChunkAction(Span<byte> chunk);

    /// <summary>
    /// Calls <paramref name="action"/> on consecutive chunks of <paramref name="tensor"/>'s storage, in
    /// element order, each at most <paramref name="chunkBytes"/> long (but at least one element).
    /// </summary>
    /// <param name="tensor">A CPU, contiguous tensor.</param>
    /// <param name="chunkBytes">Upper bound on a chunk's length, in bytes.</param>
    /// <param name="action">Reads or fills the chunk in place.</param>
    public static void ForEachChunk(torch.Tensor tensor, int chunkBytes, ChunkAction action)
    {
        long elements = tensor.NumberOfElements;
        if (elements == 0)
        {
            return;
        }
        long elementSize = tensor.ElementSize;
        long elementsPerChunk = Math.Max(1, chunkBytes / elementSize);
        if (elements <= elementsPerChunk)
        {
            action(tensor.bytes);
            return;
        }
        using torch.Tensor flat = tensor.reshape(-1);
        for (long start = 0; start < elements; start += elementsPerChunk)
        {
            using torch.Tensor part = flat.narrow(0, start, Math.Min(elementsPerChunk, elements - start));
            action(part.bytes);
        }
    }
}
