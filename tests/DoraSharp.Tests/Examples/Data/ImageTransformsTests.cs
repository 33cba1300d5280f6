using DoraSharp.Examples.Data;
using TorchSharp;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

public sealed class ImageTransformsTests
{
    /// <summary>Two 28 × 28 images, each with one lit pixel: image 0 at row 0, column 27 (top right); image 1 at row 5, column 2.</summary>
    private static DatasetSplit TwoImages()
    {
        var pixels = new float[2 * 784];
        pixels[0 * 784 + 0 * 28 + 27] = 1;
        pixels[1 * 784 + 5 * 28 + 2] = 1;
        return new DatasetSplit(torch.tensor(pixels, [2, 784]), torch.tensor(new long[] { 3, 7 }), "two pixels");
    }

    private static (int Row, int Column) Lit(DatasetSplit split, int image)
    {
        var flat = split.Images[image].data<float>().ToArray();
        var at = Array.IndexOf(flat, 1f);
        Assert.Equal(1, flat.Count(v => v != 0));
        return (at / 28, at % 28);
    }

    [Fact]
    public void One_turn_is_counter_clockwise()
    {
        using var source = TwoImages();
        using var rotated = ImageTransforms.Rotate(source);
        // Counter-clockwise: the top-right corner goes to the top-left; (r, c) goes to (27 − c, r).
        Assert.Equal((0, 0), Lit(rotated, 0));
        Assert.Equal((25, 5), Lit(rotated, 1));
        Assert.Equal(new long[] { 3, 7 }, rotated.Labels.data<long>().ToArray());
        Assert.Contains("rotated 90° counter-clockwise", rotated.Source);
        Assert.Equal((0, 27), Lit(source, 0));   // the source is untouched
    }

    [Fact]
    public void Four_turns_are_the_identity_and_minus_one_undoes_one()
    {
        using var source = TwoImages();
        using var four = ImageTransforms.Rotate(source, 4);
        using var once = ImageTransforms.Rotate(source, 1);
        using var back = ImageTransforms.Rotate(once, -1);
        Assert.True(four.Images.eq(source.Images).all().item<bool>());
        Assert.True(back.Images.eq(source.Images).all().item<bool>());
    }

    [Fact]
    public void Take_copies_the_first_examples()
    {
        using var source = TwoImages();
        using var first = ImageTransforms.Take(source, 1);
        Assert.Equal(1, first.Count);
        Assert.Equal((0, 27), Lit(first, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageTransforms.Take(source, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => ImageTransforms.Take(source, 0));
    }
}
