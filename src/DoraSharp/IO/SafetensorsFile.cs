// Why our own reader and writer, and not TorchSharp.PyBridge's `Safetensors` class (1.4.4, built from
// commit 059476b of shaltielshmid/TorchSharp.PyBridge, whose Safetensors.cs is unchanged since 1.4.0)?
// Adapter files come from strangers, and on hand-made hostile files PyBridge 1.4.4:
//  * allocates what the header claims before checking it against the file: a 16-byte file whose length
//    prefix says 2,000,000,000 makes it allocate a 2 GB byte[] (OutOfMemoryException here); a shape of
//    [131072, 131072] makes it call torch.empty for 64 GiB before it compares the byte count;
//  * accepts overlapping tensors, gaps and unused trailing bytes, and a negative begin offset (it then
//    returns header bytes as tensor data); keeps the last of two duplicate names silently;
//  * reports errors as NotImplementedException, JsonException, EndOfStreamException, ExternalException or
//    OutOfMemoryException, never one type a caller could catch to reject a file;
//  * cannot return or write __metadata__ (PEFT writes {"format":"pt"});
//  * writes through File.OpenWrite, which does not truncate: writing over a longer file leaves its tail, a
//    corrupt file; nothing is atomic; the header is neither sorted nor padded to 8 bytes and its JSON
//    escapes non-ASCII, so the bytes differ from what Python writes.
// So this file implements the format itself (a small one), following Hugging Face's Rust crate.

using System.Buffers.Binary;
using System.Text;
using TorchSharp;

namespace DoraSharp.IO;

/// <summary>
/// Reads and writes safetensors files: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// describing the tensors, then the tensors' bytes.
/// </summary>
/// <remarks>
/// Reading validates the whole header against the file's size before allocating any tensor, so a load never
/// allocates more than the file holds; every way a file can be malformed ends in
/// <see cref="AdapterFormatException"/>. Writing produces the same bytes as Hugging Face's
/// <c>safetensors</c> library for the same tensors and metadata, and replaces the file atomically.
/// </remarks>
public static class SafetensorsFile
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads the safetensors file at <paramref name="path"/>.</summary>
    /// <param name="path">The file to read.</param>
    /// <returns>The tensors (CPU, in the file's dtypes) and the metadata map; dispose it when done.</returns>
    /// <exception cref="AdapterFormatException">The file is not a valid safetensors file of supported dtypes.</exception>
    /// <exception cref="IOException">The file cannot be opened or read.</exception>
    public static SafetensorsContent Read(string path) => Read(path, TensorBytes.DefaultChunkBytes);

    /// <summary>As <see cref="Read(string)"/>, with the tensor copy chunk size exposed for tests.</summary>
    internal static SafetensorsContent Read(string path, int chunkBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        RegularFile.Check(path, problem => new AdapterFormatException(path, problem));
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        long fileLength = stream.Length;
        if (fileLength < sizeof(ulong))
        {
            throw new AdapterFormatException(path, $"the file is {fileLength} bytes long; a safetensors file starts with an 8-byte header length");
        }

        Span<byte> prefix = stackalloc byte[sizeof(ulong)];
        ReadExactly(path, stream, prefix, "the header length");
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        if (headerLength > SafetensorsHeaderParser.MaxHeaderBytes)
        {
            throw new AdapterFormatException(path, $"the header length field says {headerLength} bytes, more than the {SafetensorsHeaderParser.MaxHeaderBytes}-byte limit");
        }
        long available = fileLength - sizeof(ulong);
        if ((long)headerLength > available)
        {
            throw new AdapterFormatException(path, $"the header length field says {headerLength} bytes, but only {available} bytes follow it");
        }

        var header = new byte[headerLength];
        ReadExactly(path, stream, header, "the header");
        SafetensorsHeader parsed = SafetensorsHeaderParser.Parse(path, header, available - (long)headerLength);

        var tensors = new OrderedDictionary<string, torch.Tensor>(parsed.Tensors.Count, StringComparer.Ordinal);
        try
        {
            // The tensors tile the buffer in this order, so one sequential pass reads them all.
            foreach (SafetensorsTensorInfo info in parsed.Tensors)
            {
                torch.Tensor tensor = torch.empty(info.Shape, info.Dtype.ScalarType);
                tensors.Add(info.Name, tensor);
                ReadTensor(path, stream, info, tensor, chunkBytes);
            }
        }
        catch
        {
            foreach (torch.Tensor tensor in tensors.Values)
            {
                tensor.Dispose();
            }
            throw;
        }
        return new SafetensorsContent(tensors, parsed.Metadata);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> and <paramref name="metadata"/> to a safetensors file at
    /// <paramref name="path"/>, atomically: on failure any previous file is left intact and no temporary
    /// file remains.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="tensors">
    /// Named tensors of a supported dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL), on any device,
    /// of any layout. Their order does not matter: like Hugging Face's writer, the file lists them by dtype
    /// (widest first) and then by the UTF-8 bytes of their names.
    /// </param>
    /// <param name="metadata">
    /// The <c>__metadata__</c> map, written in its enumeration order (pass an ordered dictionary to fix it),
    /// or null to write none.
    /// </param>
    /// <exception cref="ArgumentException">
    /// A name is repeated, reserved (<c>__metadata__</c>) or not valid UTF-16; a tensor's dtype is not
    /// supported; or the header would exceed 100,000,000 bytes.
    /// </exception>
    /// <exception cref="IOException">The file could not be written; the message names the path and the cause.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Write(path, tensors, metadata, TensorBytes.DefaultChunkBytes);

    /// <summary>As the public overload, with the tensor copy chunk size exposed for tests.</summary>
    internal static void Write(string path, IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata, int chunkBytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);

        var entries = new List<(SafetensorsTensorInfo Info, byte[] NameUtf8, torch.Tensor Tensor)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach ((string name, torch.Tensor tensor) in tensors)
        {
            if (name is null || tensor is null)
            {
                throw new ArgumentException("Tensor names and tensors must not be null.", nameof(tensors));
            }
            if (name == SafetensorsHeaderParser.MetadataKey)
            {
                throw new ArgumentException($"A tensor cannot be named {SafetensorsHeaderParser.MetadataKey}: the header reserves that key for the metadata map.", nameof(tensors));
            }
            if (!names.Add(name))
            {
                throw new ArgumentException($"The tensor name {DisplayText.Quote(name)} appears more than once.", nameof(tensors));
            }
            SafetensorsDtype dtype = SafetensorsDtype.FromScalarType(tensor.dtype)
                ?? throw new ArgumentException($"Tensor {DisplayText.Quote(name)} has dtype {tensor.dtype}, which cannot be written to a safetensors file; supported dtypes: {SafetensorsDtype.SupportedNames}.", nameof(tensors));
            long byteCount = checked(tensor.NumberOfElements * dtype.Size);
            var info = new SafetensorsTensorInfo(name, dtype, tensor.shape, 0, byteCount);
            entries.Add((info, Utf8(name, $"The tensor name {DisplayText.Quote(name)}", nameof(tensors)), tensor));
        }
        if (metadata is not null)
        {
            foreach ((string key, string value) in metadata)
            {
                Utf8(key, $"The metadata key {DisplayText.Quote(key)}", nameof(metadata));
                Utf8(value ?? throw new ArgumentException($"The metadata value of {DisplayText.Quote(key)} is null.", nameof(metadata)),
                    $"The metadata value of {DisplayText.Quote(key)}", nameof(metadata));
            }
        }

        // HF's prepare(): sort by dtype, descending in its enum order, then by name (Rust compares UTF-8 bytes,
        // which differs from .NET's ordinal UTF-16 order for characters beyond U+FFFF).
        entries.Sort((a, b) =>
        {
            int byDtype = b.Info.Dtype.WriterRank.CompareTo(a.Info.Dtype.WriterRank);
            return byDtype != 0 ? byDtype : a.NameUtf8.AsSpan().SequenceCompareTo(b.NameUtf8);
        });
        var infos = new List<SafetensorsTensorInfo>(entries.Count);
        long offset = 0;
        foreach ((SafetensorsTensorInfo info, _, _) in entries)
        {
            long end = checked(offset + info.ByteCount);
            infos.Add(info with { Begin = offset, End = end });
            offset = end;
        }

        byte[] header = SafetensorsHeaderWriter.Serialize(infos, metadata);
        if (header.Length > SafetensorsHeaderParser.MaxHeaderBytes)
        {
            throw new ArgumentException($"The header would be {header.Length} bytes, more than the {SafetensorsHeaderParser.MaxHeaderBytes}-byte limit readers enforce.", nameof(tensors));
        }

        AtomicFile.Write(path, stream =>
        {
            Span<byte> prefix = stackalloc byte[sizeof(ulong)];
            BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
            stream.Write(prefix);
            stream.Write(header);
            foreach ((_, _, torch.Tensor tensor) in entries)
            {
                // cpu() and contiguous() alias the tensor when it already is both, so this copies only when needed.
                using torch.Tensor onCpu = tensor.cpu();
                using torch.Tensor dense = onCpu.contiguous();
                TensorBytes.ForEachChunk(dense, chunkBytes, chunk => stream.Write(chunk));
            }
        });
    }

    private static void ReadTensor(string path, FileStream stream, SafetensorsTensorInfo info, torch.Tensor tensor, int chunkBytes)
    {
        bool isBool = info.Dtype.ScalarType == torch.ScalarType.Bool;
        long done = 0;
        TensorBytes.ForEachChunk(tensor, chunkBytes, chunk =>
        {
            ReadExactly(path, stream, chunk, $"tensor {DisplayText.Quote(info.Name)}");
            // libtorch assumes a bool is stored as 0 or 1; any other byte gives inconsistent results
            // (e.g. sum() counts a 2 as 2), so such a file is rejected rather than loaded.
            int bad = isBool ? chunk.IndexOfAnyExcept((byte)0, (byte)1) : -1;
            if (bad >= 0)
            {
                throw new AdapterFormatException(path, $"tensor {DisplayText.Quote(info.Name)}: element {done + bad} of the BOOL tensor is byte 0x{chunk[bad]:x2}; expected 0x00 or 0x01");
            }
            done += chunk.Length;
        });
    }

    private static void ReadExactly(string path, Stream stream, Span<byte> buffer, string what)
    {
        try
        {
            stream.ReadExactly(buffer);
        }
        catch (EndOfStreamException e)
        {
            // Lengths were checked against the size at open, so only a file shrinking under us gets here.
            throw new AdapterFormatException(path, $"the file ended while reading {what}: it is shorter than when it was opened (changed while being read?)", e);
        }
    }

    private static byte[] Utf8(string text, string what, string parameter)
    {
        try
        {
            return StrictUtf8.GetBytes(text);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"{what} is not valid UTF-16 (it has a lone surrogate), so it cannot be written as UTF-8 JSON.", parameter, e);
        }
    }
}
