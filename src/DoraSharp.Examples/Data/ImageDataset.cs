using TorchSharp;

namespace DoraSharp.Examples.Data;

/// <summary>
/// Loads a pair of IDX files (images and labels, raw or gzipped) into a <see cref="DatasetSplit"/>.
/// </summary>
public static class ImageDataset
{
    /// <summary>Images must be this tall and wide: the models of the worked example take 784 inputs.</summary>
    public const int ImageSide = 28;

    /// <summary>Labels must be below this: MNIST and Fashion-MNIST both have ten classes.</summary>
    public const int ClassCount = 10;

    // byte / 255 for every byte, computed once in C# so the result does not depend on how the
    // tensor library implements division (some kernels multiply by the reciprocal instead).
    private static readonly float[] Scale = Enumerable.Range(0, 256).Select(b => b / 255f).ToArray();

    /// <summary>
    /// Reads an IDX image file and an IDX label file and returns them as one split.
    /// </summary>
    /// <param name="imagesPath">An IDX file of 28 × 28 unsigned-byte images (magic 0x00000803), raw or gzipped.</param>
    /// <param name="labelsPath">An IDX file of unsigned-byte labels in 0..9 (magic 0x00000801), raw or gzipped, one per image.</param>
    /// <exception cref="DatasetFormatException">A file is not valid IDX, the images are not 28 × 28, the counts differ or a label is 10 or more.</exception>
    /// <exception cref="FileNotFoundException">A file does not exist.</exception>
    public static DatasetSplit Load(string imagesPath, string labelsPath) =>
        Load(imagesPath, labelsPath, $"{imagesPath} + {labelsPath}");

    internal static DatasetSplit Load(string imagesPath, string labelsPath, string source)
    {
        var images = IdxReader.ReadImages(imagesPath);
        if (images.Rows != ImageSide || images.Columns != ImageSide)
        {
            throw new DatasetFormatException(imagesPath, $"the images are {images.Rows}×{images.Columns} pixels", $"{ImageSide}×{ImageSide}");
        }
        var labels = IdxReader.ReadLabels(labelsPath);
        if (labels.Length != images.Count)
        {
            throw new DatasetFormatException(labelsPath, $"the label count {labels.Length} differs from the image count {images.Count} of {imagesPath}", "one label per image");
        }
        var bad = labels.AsSpan().IndexOfAnyInRange((byte)ClassCount, byte.MaxValue);
        if (bad >= 0)
        {
            throw new DatasetFormatException(labelsPath, $"label {labels[bad]} at index {bad} is out of range", $"labels 0..{ClassCount - 1}");
        }

        var pixels = new float[images.Pixels.Length];
        var bytes = images.Pixels;
        for (var i = 0; i < pixels.Length; i++)
        {
            pixels[i] = Scale[bytes[i]];
        }
        var classes = new long[labels.Length];
        for (var i = 0; i < classes.Length; i++)
        {
            classes[i] = labels[i];
        }

        using var scope = torch.NewDisposeScope();
        var x = torch.tensor(pixels, [images.Count, ImageSide * ImageSide], torch.float32);
        var y = torch.tensor(classes, [labels.Length], torch.int64);
        return new DatasetSplit(x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope(), source);
    }
}
