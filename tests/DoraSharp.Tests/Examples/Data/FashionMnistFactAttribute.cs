using DoraSharp.Examples.Data;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>
/// A fact that runs only where Debian's dataset-fashion-mnist is installed, and is reported as
/// skipped, with the reason, everywhere else (xunit 2 has no Assert.Skip).
/// </summary>
public sealed class FashionMnistFactAttribute : FactAttribute
{
    public FashionMnistFactAttribute()
    {
        if (!File.Exists(Path.Combine(DatasetCatalog.DebianFashionMnistDirectory, "train-images-idx3-ubyte.gz")))
        {
            Skip = $"Fashion-MNIST is not installed in {DatasetCatalog.DebianFashionMnistDirectory} (apt-get install dataset-fashion-mnist).";
        }
    }
}
