using DoraSharp.Examples.Data;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>Finding a named data set's folder and files, and saying clearly what is missing.</summary>
public sealed class DatasetCatalogTests : IDisposable
{
    private readonly IdxFiles files = new();

    public void Dispose() => files.Dispose();

    /// <summary>Writes a valid four-file data set into <paramref name="folder"/>: <paramref name="train"/> and <paramref name="test"/> images whose label is their index mod 10.</summary>
    private static void WriteDataSet(string folder, int train, int test, bool gzip)
    {
        Directory.CreateDirectory(folder);
        foreach (var (prefix, count) in new[] { ("train", train), ("t10k", test) })
        {
            var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
            var images = IdxFiles.Images(IdxFiles.SamplePixels(count), count);
            var suffix = gzip ? ".gz" : "";
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-images-idx3-ubyte{suffix}"), gzip ? IdxFiles.Gzip(images) : images);
            File.WriteAllBytes(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte{suffix}"), gzip ? IdxFiles.Gzip(IdxFiles.Labels(labels)) : IdxFiles.Labels(labels));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Loads_a_user_folder_with_the_standard_names(bool gzip)
    {
        WriteDataSet(files.Folder, train: 12, test: 3, gzip);

        using var train = DatasetCatalog.Load("mnist", files.Folder, train: true);
        using var test = DatasetCatalog.Load("MNIST", files.Folder, train: false);

        Assert.Equal(12, train.Count);
        Assert.Equal(3, test.Count);
        Assert.Contains($"mnist train split from {files.Folder} (given folder)", train.Source);
        Assert.Contains($"mnist test split from {files.Folder} (given folder)", test.Source);
    }

    [Fact]
    public void Prefers_the_raw_file_when_both_exist()
    {
        WriteDataSet(files.Folder, train: 10, test: 10, gzip: false);
        File.WriteAllBytes(Path.Combine(files.Folder, "train-images-idx3-ubyte.gz"), [1, 2, 3]);

        var (images, labels) = DatasetCatalog.FindFiles(files.Folder, train: true);

        Assert.Equal(Path.Combine(files.Folder, "train-images-idx3-ubyte"), images);
        Assert.Equal(Path.Combine(files.Folder, "train-labels-idx1-ubyte"), labels);
    }

    [Fact]
    public void Unknown_data_set_name_lists_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => DatasetCatalog.Load("cifar10", files.Folder, train: true));
        Assert.Contains("Unknown data set 'cifar10'; expected one of: mnist, fashion-mnist.", e.Message);
    }

    [Fact]
    public void Missing_folder_is_named()
    {
        var missing = Path.Combine(files.Folder, "nope");
        var e = Assert.Throws<DirectoryNotFoundException>(() => DatasetCatalog.Load("fashion-mnist", missing, train: true));
        Assert.Contains($"Data folder '{missing}' for data set 'fashion-mnist' does not exist", e.Message);
        Assert.Contains("train-images-idx3-ubyte", e.Message);
    }

    [Fact]
    public void Missing_file_names_the_folder_and_the_names_tried()
    {
        WriteDataSet(files.Folder, train: 10, test: 10, gzip: true);
        File.Delete(Path.Combine(files.Folder, "t10k-labels-idx1-ubyte.gz"));

        var e = Assert.Throws<FileNotFoundException>(() => DatasetCatalog.Load("mnist", files.Folder, train: false));
        Assert.Contains($"Data folder '{files.Folder}' has no t10k-labels-idx1-ubyte file; looked for t10k-labels-idx1-ubyte and t10k-labels-idx1-ubyte.gz", e.Message);
    }

    [Fact]
    public void Data_root_variable_comes_first()
    {
        Directory.CreateDirectory(Path.Combine(files.Folder, "mnist"));
        Directory.CreateDirectory(Path.Combine(files.Folder, "fashion-mnist"));

        var mnist = DatasetCatalog.Resolve("mnist", null, files.Folder, AppContext.BaseDirectory);
        var fashion = DatasetCatalog.Resolve("fashion-mnist", null, files.Folder, AppContext.BaseDirectory);

        Assert.Equal((Path.Combine(files.Folder, "mnist"), "$DORASHARP_DATA"), (mnist.Directory, mnist.Origin));
        Assert.Equal((Path.Combine(files.Folder, "fashion-mnist"), "$DORASHARP_DATA"), (fashion.Directory, fashion.Origin));
    }

    [Fact]
    public void Without_a_folder_mnist_is_the_repository_bundle()
    {
        // The data root has no mnist/ inside, so the search goes on to the bundled files.
        var resolved = DatasetCatalog.Resolve("mnist", null, files.Folder, AppContext.BaseDirectory);

        Assert.Equal(RepositoryData.MnistFolder, resolved.Directory);
        Assert.Equal("bundled with DoraSharp", resolved.Origin);
    }

    [Fact]
    public void When_nothing_is_found_every_place_tried_is_listed()
    {
        var start = Path.Combine(files.Folder, "app", "bin");
        Directory.CreateDirectory(start);

        var e = Assert.Throws<DirectoryNotFoundException>(() => DatasetCatalog.Resolve("mnist", null, null, start));

        Assert.Contains("No folder for data set 'mnist' was found; looked in: ", e.Message);
        Assert.Contains(Path.Combine(start, "data", "mnist"), e.Message);
        Assert.Contains(Path.Combine(files.Folder, "app", "data", "mnist"), e.Message);
        Assert.Contains("(DORASHARP_DATA is not set)", e.Message);
    }
}
