using DoraSharp.Examples.Data;
using TorchSharp;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>Loading an image file and a label file into tensors, and the checks across the two.</summary>
public sealed class ImageDatasetTests : IDisposable
{
    private readonly IdxFiles files = new();

    public void Dispose() => files.Dispose();

    [Fact]
    public void Pixels_become_byte_over_255_and_labels_int64()
    {
        var pixels = IdxFiles.SamplePixels(5);
        byte[] labels = [3, 0, 9, 9, 1];
        using var split = ImageDataset.Load(
            files.Write("images", IdxFiles.Images(pixels, 5)), files.Write("labels", IdxFiles.Labels(labels)));

        Assert.Equal(5, split.Count);
        Assert.Equal(new long[] { 5, 784 }, split.Images.shape);
        Assert.Equal(torch.float32, split.Images.dtype);
        Assert.Equal(new long[] { 5 }, split.Labels.shape);
        Assert.Equal(torch.int64, split.Labels.dtype);
        Assert.Equal(pixels.Select(b => b / 255f).ToArray(), split.Images.data<float>().ToArray());
        Assert.Equal(labels.Select(b => (long)b).ToArray(), split.Labels.data<long>().ToArray());
    }

    [Fact]
    public void Raw_and_gzipped_files_give_identical_tensors()
    {
        var images = IdxFiles.Images(IdxFiles.SamplePixels(7), 7);
        var labels = IdxFiles.Labels([0, 1, 2, 3, 4, 5, 6]);
        using var raw = ImageDataset.Load(files.Write("i", images), files.Write("l", labels));
        using var gz = ImageDataset.Load(files.Write("i.gz", IdxFiles.Gzip(images)), files.Write("l.gz", IdxFiles.Gzip(labels)));

        Assert.Equal(raw.Images.shape, gz.Images.shape);
        Assert.Equal(raw.Images.data<float>().ToArray(), gz.Images.data<float>().ToArray());
        Assert.Equal(raw.Labels.data<long>().ToArray(), gz.Labels.data<long>().ToArray());
    }

    [Fact]
    public void Image_and_label_counts_must_agree()
    {
        var images = files.Write("five-images", IdxFiles.Images(IdxFiles.SamplePixels(5), 5));
        var labels = files.Write("four-labels", IdxFiles.Labels([1, 2, 3, 4]));

        var e = Assert.Throws<DatasetFormatException>(() => ImageDataset.Load(images, labels));
        Assert.Equal(labels, e.FilePath);
        Assert.StartsWith(labels + ": ", e.Message);
        Assert.Contains($"the label count 4 differs from the image count 5 of {images}", e.Message);
    }

    [Fact]
    public void Labels_must_be_below_ten()
    {
        var images = files.Write("images", IdxFiles.Images(IdxFiles.SamplePixels(4), 4));
        var labels = files.Write("labels", IdxFiles.Labels([9, 0, 10, 255]));

        var e = Assert.Throws<DatasetFormatException>(() => ImageDataset.Load(images, labels));
        Assert.Equal(labels, e.FilePath);
        Assert.Contains("label 10 at index 2 is out of range", e.Message);
        Assert.Contains("expected labels 0..9", e.Message);
    }

    [Fact]
    public void Images_must_be_28_by_28()
    {
        var images = files.Write("small-images", IdxFiles.Images(IdxFiles.SamplePixels(2, 32 * 32), 2, 32, 32));
        var labels = files.Write("labels", IdxFiles.Labels([1, 2]));

        var e = Assert.Throws<DatasetFormatException>(() => ImageDataset.Load(images, labels));
        Assert.Equal(images, e.FilePath);
        Assert.Contains("the images are 32×32 pixels; expected 28×28", e.Message);
    }
}
