using System.Buffers.Binary;
using System.IO.Compression;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>
/// Builds IDX files byte by byte for the tests, independently of the reader under test, in a
/// temporary folder that is deleted on dispose.
/// </summary>
internal sealed class IdxFiles : IDisposable
{
    public const uint ImagesMagic = 0x00000803;
    public const uint LabelsMagic = 0x00000801;

    public IdxFiles()
    {
        Folder = Path.Combine(Path.GetTempPath(), "dorasharp-idx-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
    }

    /// <summary>The temporary folder the files are written to.</summary>
    public string Folder { get; }

    /// <summary>A big-endian IDX header (magic, then each size) followed by <paramref name="data"/>.</summary>
    public static byte[] Idx(uint magic, uint[] sizes, byte[] data)
    {
        var bytes = new byte[4 + 4 * sizes.Length + data.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        for (var i = 0; i < sizes.Length; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4 + 4 * i), sizes[i]);
        }
        data.CopyTo(bytes, 4 + 4 * sizes.Length);
        return bytes;
    }

    /// <summary>A valid image file's bytes: <paramref name="count"/> images of rows × columns.</summary>
    public static byte[] Images(byte[] pixels, int count, int rows = 28, int columns = 28) =>
        Idx(ImagesMagic, [(uint)count, (uint)rows, (uint)columns], pixels);

    /// <summary>A valid label file's bytes.</summary>
    public static byte[] Labels(byte[] labels) => Idx(LabelsMagic, [(uint)labels.Length], labels);

    /// <summary>Pixels that cover 0, 255 and many values between, different in every image.</summary>
    public static byte[] SamplePixels(int count, int pixelsPerImage = 784)
    {
        var pixels = new byte[count * pixelsPerImage];
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = (byte)(i * 37 + i / pixelsPerImage);
        }
        return pixels;
    }

    public static byte[] Gzip(byte[] data)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal))
        {
            gzip.Write(data);
        }
        return buffer.ToArray();
    }

    /// <summary>Writes <paramref name="bytes"/> to a file of that name in <see cref="Folder"/> and returns its path.</summary>
    public string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(Folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (IOException)
        {
            // A leftover temp folder is harmless; failing the test for it would hide the real result.
        }
    }
}
