using System.Buffers.Binary;
using System.Text;

namespace DoraSharp.Tests.IO;

/// <summary>Builds raw safetensors files by hand, independently of the code under test.</summary>
internal static class SafetensorsBytes
{
    /// <summary>
    /// 8-byte little-endian <paramref name="headerLength"/> (default: the header's UTF-8 length), the header,
    /// then <paramref name="buffer"/>.
    /// </summary>
    public static byte[] Build(string headerJson, byte[] buffer, ulong? headerLength = null) =>
        Build(Encoding.UTF8.GetBytes(headerJson), buffer, headerLength);

    /// <inheritdoc cref="Build(string, byte[], ulong?)"/>
    public static byte[] Build(byte[] header, byte[] buffer, ulong? headerLength = null)
    {
        var file = new byte[8 + header.Length + buffer.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, headerLength ?? (ulong)header.Length);
        header.CopyTo(file, 8);
        buffer.CopyTo(file, 8 + header.Length);
        return file;
    }

    /// <summary>The header length field of a file.</summary>
    public static ulong HeaderLength(byte[] file) => BinaryPrimitives.ReadUInt64LittleEndian(file);

    /// <summary>The header text of a file (padding included).</summary>
    public static string HeaderText(byte[] file) => Encoding.UTF8.GetString(file, 8, checked((int)HeaderLength(file)));
}
