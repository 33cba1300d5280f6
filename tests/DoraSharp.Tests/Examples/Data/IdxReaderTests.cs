using DoraSharp.Examples.Data;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>Every way an IDX file can be wrong is reported with its path and the specific problem.</summary>
public sealed class IdxReaderTests : IDisposable
{
    private readonly IdxFiles files = new();

    public void Dispose() => files.Dispose();

    private static void AssertFails(string path, Action read, params string[] phrases)
    {
        var e = Assert.Throws<DatasetFormatException>(read);
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        foreach (var phrase in phrases)
        {
            Assert.Contains(phrase, e.Message);
        }
    }

    [Fact]
    public void Reads_images_and_labels_as_stored()
    {
        var pixels = IdxFiles.SamplePixels(3, 6);
        var images = IdxReader.ReadImages(files.Write("i", IdxFiles.Images(pixels, 3, 2, 3)));
        var labels = IdxReader.ReadLabels(files.Write("l", IdxFiles.Labels([7, 0, 9])));

        Assert.Equal((3, 2, 3), (images.Count, images.Rows, images.Columns));
        Assert.Equal(pixels, images.Pixels);
        Assert.Equal(new byte[] { 7, 0, 9 }, labels);
    }

    [Fact]
    public void Gzip_is_recognised_by_content_not_by_name()
    {
        var raw = IdxFiles.Labels([1, 2, 3]);
        Assert.Equal(new byte[] { 1, 2, 3 }, IdxReader.ReadLabels(files.Write("gzipped-without-suffix", IdxFiles.Gzip(raw))));
        Assert.Equal(new byte[] { 1, 2, 3 }, IdxReader.ReadLabels(files.Write("raw-with-suffix.gz", raw)));
    }

    [Fact]
    public void Wrong_magic_number()
    {
        var bytes = IdxFiles.Images(IdxFiles.SamplePixels(1), 1);
        bytes[0] = 0x12;
        bytes[1] = 0x34;
        var path = files.Write("wrong-magic", bytes);
        AssertFails(path, () => IdxReader.ReadImages(path), "starts with 0x12340803", "not an IDX magic number", "0x00000803");
    }

    [Fact]
    public void Wrong_element_type()
    {
        var path = files.Write("floats", IdxFiles.Idx(0x00000D03, [1, 28, 28], new byte[4 * 784]));
        AssertFails(path, () => IdxReader.ReadImages(path), "element type 0x0D (32-bit float)", "0x08 (unsigned byte)");
    }

    [Fact]
    public void Wrong_dimension_count()
    {
        // A label file where an image file is expected: 1 dimension instead of 3.
        var path = files.Write("labels-as-images", IdxFiles.Labels([1, 2]));
        AssertFails(path, () => IdxReader.ReadImages(path), "declares 1 dimensions", "expected 3 (image count, rows, columns)");
    }

    [Theory]
    [InlineData(0u, 28u, 28u, "dimension 1 (image count) is 0")]
    [InlineData(2u, 0u, 28u, "dimension 2 (rows) is 0")]
    [InlineData(2u, 28u, 0u, "dimension 3 (columns) is 0")]
    public void Zero_dimension(uint count, uint rows, uint columns, string problem)
    {
        var path = files.Write("zero", IdxFiles.Idx(IdxFiles.ImagesMagic, [count, rows, columns], []));
        AssertFails(path, () => IdxReader.ReadImages(path), problem, "at least 1");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Truncated_data(bool gzip)
    {
        var whole = IdxFiles.Images(IdxFiles.SamplePixels(2), 2);
        var cut = whole[..(whole.Length - 100)];
        var path = files.Write("cut", gzip ? IdxFiles.Gzip(cut) : cut);
        AssertFails(path, () => IdxReader.ReadImages(path), "truncated", "only 1468 of the 1568 bytes", "2 images of 28×28");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(15)]
    public void Truncated_header(int length)
    {
        var path = files.Write("short", IdxFiles.Images(IdxFiles.SamplePixels(1), 1)[..length]);
        AssertFails(path, () => IdxReader.ReadImages(path), $"ends inside the IDX header, after {length} of its 16 bytes");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Trailing_bytes(bool gzip)
    {
        var bytes = IdxFiles.Labels([1, 2, 3]).Concat(new byte[] { 4, 5 }).ToArray();
        var path = files.Write("long", gzip ? IdxFiles.Gzip(bytes) : bytes);
        AssertFails(path, () => IdxReader.ReadLabels(path), "2 trailing bytes follow the 3 data bytes", "3 labels");
    }

    [Fact]
    public void Corrupt_gzip()
    {
        var gzip = IdxFiles.Gzip(IdxFiles.Images(IdxFiles.SamplePixels(4), 4));
        // Overwrite the middle of the deflate stream; header and trailer stay intact.
        for (var i = gzip.Length / 2; i < gzip.Length / 2 + 16; i++)
        {
            gzip[i] = 0xFF;
        }
        var path = files.Write("corrupt.gz", gzip);
        AssertFails(path, () => IdxReader.ReadImages(path), "the gzip data is corrupt", "a valid gzip stream");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Huge_declared_count_with_a_tiny_file_fails_without_allocating_it(bool gzip)
    {
        // 2,000,000 images of 28×28 is 1.568 GB: within one array's reach, so only the
        // length check (raw) or reading as data arrives (gzip) can stop it cheaply.
        var bytes = IdxFiles.Idx(IdxFiles.ImagesMagic, [2_000_000, 28, 28], IdxFiles.SamplePixels(1));
        var path = files.Write("huge", gzip ? IdxFiles.Gzip(bytes) : bytes);

        var before = GC.GetAllocatedBytesForCurrentThread();
        AssertFails(path, () => IdxReader.ReadImages(path), "truncated", "only 784 of the 1568000000 bytes");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < 16 << 20, $"allocated {allocated} bytes for a {bytes.Length}-byte file");
    }

    [Fact]
    public void Declared_size_beyond_any_array()
    {
        var path = files.Write("enormous", IdxFiles.Idx(IdxFiles.ImagesMagic, [uint.MaxValue, 28, 28], new byte[784]));
        AssertFails(path, () => IdxReader.ReadImages(path), "4294967295 images of 28×28", "more than one array can hold");
    }
}
