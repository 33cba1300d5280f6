using DoraSharp.Examples.Data;
using TorchSharp;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>Debian's Fashion-MNIST, where installed: the full 60,000 / 10,000, 6,000 / 1,000 per class as Zalando publishes it.</summary>
public sealed class FashionMnistTests
{
    [FashionMnistFact]
    public void Debian_package_is_found_without_a_folder()
    {
        var resolved = DatasetCatalog.Resolve("fashion-mnist", null, null, AppContext.BaseDirectory);
        Assert.Equal((DatasetCatalog.DebianFashionMnistDirectory, "Debian package dataset-fashion-mnist"), (resolved.Directory, resolved.Origin));
    }

    [FashionMnistFact]
    public void Loads_60000_train_and_10000_test_images()
    {
        foreach (var (train, count) in new[] { (true, 60_000), (false, 10_000) })
        {
            using var split = DatasetCatalog.Load("fashion-mnist", DatasetCatalog.DebianFashionMnistDirectory, train);
            using var scope = torch.NewDisposeScope();

            Assert.Equal(count, split.Count);
            Assert.Equal(new long[] { count, 784 }, split.Images.shape);
            Assert.True(split.Images.min().item<float>() >= 0f);
            Assert.True(split.Images.max().item<float>() <= 1f);
            Assert.Equal(Enumerable.Repeat((long)count / 10, 10).ToArray(), torch.bincount(split.Labels, minlength: 10).data<long>().ToArray());
        }
    }
}
