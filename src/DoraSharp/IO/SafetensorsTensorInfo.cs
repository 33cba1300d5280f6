namespace DoraSharp.IO;

/// <summary>One tensor's entry in a safetensors header, after validation.</summary>
/// <param name="Name">The tensor's name (its key in the header).</param>
/// <param name="Dtype">The tensor's element type.</param>
/// <param name="Shape">The tensor's dimensions; empty for a 0-d scalar.</param>
/// <param name="Begin">Start of the tensor's bytes, relative to the start of the data buffer.</param>
/// <param name="End">End (exclusive) of the tensor's bytes, relative to the start of the data buffer.</param>
internal sealed record SafetensorsTensorInfo(string Name, SafetensorsDtype Dtype, long[] Shape, long Begin, long End)
{
    /// <summary>The number of bytes the tensor occupies in the data buffer.</summary>
    public long ByteCount => End - Begin;
}
