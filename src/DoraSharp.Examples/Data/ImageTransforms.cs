using TorchSharp;

namespace DoraSharp.Examples.Data;

/// <summary>New splits made from existing ones (the originals are left as they are and stay the caller's).</summary>
public static class ImageTransforms
{
    /// <summary>
    /// Every image turned by <paramref name="quarterTurns"/> × 90° counter-clockwise as displayed (row 0 at the
    /// top): the pixel at row r, column c of the result is the source pixel at row c, column 27 − r for one turn
    /// (PyTorch's <c>torch.rot90(image, k, dims=(0, 1))</c>). Labels are copied unchanged.
    /// </summary>
    /// <param name="split">Images of <see cref="ImageDataset.ImageSide"/> × <see cref="ImageDataset.ImageSide"/> pixels.</param>
    /// <param name="quarterTurns">Any integer; negative turns go clockwise.</param>
    public static DatasetSplit Rotate(DatasetSplit split, int quarterTurns = 1)
    {
        ArgumentNullException.ThrowIfNull(split);
        const int side = ImageDataset.ImageSide;
        using var scope = torch.NewDisposeScope();
        var images = split.Images.view(split.Count, side, side).rot90(quarterTurns, (1, 2)).reshape(split.Count, side * side).contiguous();
        var labels = split.Labels.clone();
        var turns = ((quarterTurns % 4) + 4) % 4;
        return new DatasetSplit(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(),
            $"{split.Source}, rotated {turns * 90}° counter-clockwise");
    }

    /// <summary>The first <paramref name="count"/> examples of <paramref name="split"/>, copied (for quick runs and tests).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1 or above the split's size.</exception>
    public static DatasetSplit Take(DatasetSplit split, int count)
    {
        ArgumentNullException.ThrowIfNull(split);
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, split.Count);
        using var scope = torch.NewDisposeScope();
        var images = split.Images.narrow(0, 0, count).clone();
        var labels = split.Labels.narrow(0, 0, count).clone();
        return new DatasetSplit(images.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope(), $"first {count} of {split.Source}");
    }
}
