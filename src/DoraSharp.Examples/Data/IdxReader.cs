using System.Buffers.Binary;
using System.IO.Compression;

namespace DoraSharp.Examples.Data;

/// <summary>
/// Reads IDX files (the format of MNIST and Fashion-MNIST), raw or gzipped, and checks every
/// promise the header makes.
/// </summary>
/// <remarks>
/// An IDX file is a big-endian header, magic number 0x0000TTDD (TT = element type, DD = number
/// of dimensions) followed by DD 32-bit sizes, and then the product of the sizes in elements.
/// Only unsigned bytes (TT = 0x08) are accepted: that is what image and label files use.
/// Gzip is recognised by its magic bytes 1F 8B, not by the file name, because renamed and
/// half-extracted downloads are common. Memory grows with the data actually present, never
/// with what a header claims, so a corrupt or hostile header cannot make us allocate gigabytes.
/// Known gap: .NET's GZipStream checks the CRC when a gzip trailer is there, but says nothing
/// when the 8-byte trailer is cut off or when bytes that are not gzip follow the last member;
/// the header's sizes still guarantee that all the data is present.
/// </remarks>
internal static class IdxReader
{
    /// <summary>The element type code of unsigned bytes, the third byte of the magic number.</summary>
    private const byte UnsignedByte = 0x08;

    /// <summary>First buffer size for gzipped data, whose true length is unknown until it has been decompressed.</summary>
    private const int FirstChunk = 1 << 20;

    private static readonly string[] ImageDimensionNames = ["image count", "rows", "columns"];
    private static readonly string[] LabelDimensionNames = ["label count"];

    /// <summary>Reads an IDX image file (magic 0x00000803: unsigned bytes, 3 dimensions).</summary>
    /// <exception cref="DatasetFormatException">The file is not a valid IDX image file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static IdxImages ReadImages(string path)
    {
        var (sizes, data) = Read(path, ImageDimensionNames, "images");
        return new IdxImages(sizes[0], sizes[1], sizes[2], data);
    }

    /// <summary>Reads an IDX label file (magic 0x00000801: unsigned bytes, 1 dimension) and returns one byte per label.</summary>
    /// <exception cref="DatasetFormatException">The file is not a valid IDX label file.</exception>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static byte[] ReadLabels(string path) => Read(path, LabelDimensionNames, "labels").Data;

    private static (int[] Sizes, byte[] Data) Read(string path, string[] dimensionNames, string kind)
    {
        IO.RegularFile.Check(path, problem => new DatasetFormatException(path, problem, $"an IDX {kind} file"));
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
        var gzipped = StartsWithGzipMagic(file);
        using var stream = gzipped ? new GZipStream(file, CompressionMode.Decompress) : (Stream)file;
        try
        {
            var sizes = ReadHeader(path, stream, dimensionNames, kind);
            long headerLength = 4 + 4 * dimensionNames.Length;
            var dataLength = DataLength(path, sizes, dimensionNames, kind);
            var description = Describe(sizes, kind);
            if (!gzipped)
            {
                // The length of a plain file is known: judge it before allocating anything.
                var present = file.Length - headerLength;
                if (present < dataLength)
                {
                    throw Truncated(path, present, dataLength, description);
                }
                if (present > dataLength)
                {
                    throw Trailing(path, (present - dataLength).ToString(), dataLength, description);
                }
            }
            var data = ReadData(path, stream, (int)dataLength, description, allocateAll: !gzipped);
            var surplus = CountSurplus(stream);
            if (surplus > 0)
            {
                var amount = surplus >= FirstChunk ? $"at least {surplus}" : surplus.ToString();
                throw Trailing(path, amount, dataLength, description);
            }
            return (sizes.Select(s => (int)s).ToArray(), data);
        }
        catch (InvalidDataException e)
        {
            // GZipStream reports a bad deflate stream, CRC or length this way; add which file it was.
            throw new DatasetFormatException(path, $"the gzip data is corrupt ({e.Message})", "a valid gzip stream", e);
        }
    }

    private static bool StartsWithGzipMagic(FileStream file)
    {
        Span<byte> magic = stackalloc byte[2];
        var read = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        file.Position = 0;
        return read == 2 && magic[0] == 0x1F && magic[1] == 0x8B;
    }

    private static uint[] ReadHeader(string path, Stream stream, string[] dimensionNames, string kind)
    {
        var dimensions = dimensionNames.Length;
        var headerLength = 4 + 4 * dimensions;
        var expectedMagic = $"0x{UnsignedByte << 8 | dimensions:X8} ({kind}: unsigned bytes, {dimensions} dimension{(dimensions == 1 ? "" : "s")})";
        var header = new byte[headerLength];

        // Read the magic number alone first so that a file of the wrong kind is reported as
        // such even when it is too short to hold this kind's header.
        var read = stream.ReadAtLeast(header.AsSpan(0, 4), 4, throwOnEndOfStream: false);
        if (read < 4)
        {
            throw HeaderTruncated(path, read, headerLength, dimensions);
        }
        var magic = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (header[0] != 0 || header[1] != 0)
        {
            throw new DatasetFormatException(path, $"it starts with 0x{magic:X8}, which is not an IDX magic number (its first two bytes must be zero)", $"the IDX magic number {expectedMagic}");
        }
        if (header[2] != UnsignedByte)
        {
            throw new DatasetFormatException(path, $"the IDX magic number 0x{magic:X8} declares element type 0x{header[2]:X2} ({ElementTypeName(header[2])})", $"element type 0x{UnsignedByte:X2} (unsigned byte), magic number {expectedMagic}");
        }
        if (header[3] != dimensions)
        {
            throw new DatasetFormatException(path, $"the IDX magic number 0x{magic:X8} declares {header[3]} dimensions", $"{dimensions} ({string.Join(", ", dimensionNames)}), magic number {expectedMagic}");
        }

        read += stream.ReadAtLeast(header.AsSpan(4), headerLength - 4, throwOnEndOfStream: false);
        if (read < headerLength)
        {
            throw HeaderTruncated(path, read, headerLength, dimensions);
        }
        var sizes = new uint[dimensions];
        for (var i = 0; i < dimensions; i++)
        {
            sizes[i] = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4 + 4 * i));
            if (sizes[i] == 0)
            {
                throw new DatasetFormatException(path, $"IDX dimension {i + 1} ({dimensionNames[i]}) is 0", "every dimension to be at least 1");
            }
        }
        return sizes;
    }

    private static long DataLength(string path, uint[] sizes, string[] dimensionNames, string kind)
    {
        // Up to three 32-bit factors: UInt128 cannot overflow.
        UInt128 product = 1;
        foreach (var size in sizes)
        {
            product *= size;
        }
        if (product > (UInt128)Array.MaxLength)
        {
            throw new DatasetFormatException(path, $"the IDX header declares {Describe(sizes, kind)} = {product} data bytes, more than one array can hold", $"at most {Array.MaxLength} data bytes ({string.Join(" × ", dimensionNames)})");
        }
        return (long)product;
    }

    private static byte[] ReadData(string path, Stream stream, int dataLength, string description, bool allocateAll)
    {
        // Gzipped data: start small and double only as decompressed bytes actually arrive, so
        // memory stays within twice what the file really holds whatever the header says.
        var buffer = new byte[allocateAll ? dataLength : Math.Min(dataLength, FirstChunk)];
        var filled = 0;
        while (filled < dataLength)
        {
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, (int)Math.Min(dataLength, 2L * buffer.Length));
            }
            var read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                throw Truncated(path, filled, dataLength, description);
            }
            filled += read;
        }
        return buffer;
    }

    /// <summary>Counts the bytes left in the stream, stopping at <see cref="FirstChunk"/> so a surplus cannot cost unbounded time.</summary>
    private static int CountSurplus(Stream stream)
    {
        var scratch = new byte[4096];
        var total = 0;
        int read;
        while (total < FirstChunk && (read = stream.Read(scratch, 0, scratch.Length)) > 0)
        {
            total += read;
        }
        return total;
    }

    private static string Describe(uint[] sizes, string kind) =>
        sizes.Length == 3 ? $"{sizes[0]} {kind} of {sizes[1]}×{sizes[2]}" : $"{sizes[0]} {kind}";

    private static DatasetFormatException HeaderTruncated(string path, int read, int headerLength, int dimensions) =>
        new(path, $"the file ends inside the IDX header, after {read} of its {headerLength} bytes", $"a {headerLength}-byte header (magic number and {dimensions} dimension size{(dimensions == 1 ? "" : "s")})");

    private static DatasetFormatException Truncated(string path, long present, long dataLength, string description) =>
        new(path, $"the data is truncated: only {present} of the {dataLength} bytes the header declares ({description}) are present", $"the file to hold all {dataLength} bytes");

    private static DatasetFormatException Trailing(string path, string surplus, long dataLength, string description) =>
        new(path, $"{surplus} trailing bytes follow the {dataLength} data bytes the header declares ({description})", "the file to end there (is the header's count wrong, or is something appended?)");

    private static string ElementTypeName(byte code) => code switch
    {
        0x09 => "signed byte",
        0x0B => "16-bit integer",
        0x0C => "32-bit integer",
        0x0D => "32-bit float",
        0x0E => "64-bit float",
        _ => "not an IDX element type",
    };
}
