using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Reference;
using Xunit;
using Xunit.Abstractions;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// The TorchSharp encoder against ONNX Runtime running the same ONNX file. It loads both itself (to measure the
/// load times) but sits in the MiniLM collection so that it never runs beside the other heavy tests.
/// </summary>
[Collection(MiniLmCollection.Name)]
public sealed class OnnxEquivalenceTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-4;

    [Fact]
    public void Check_on_the_fixed_sentences_is_within_1e_4_of_onnx_runtime()
    {
        // Run sets libtorch's process-wide thread count; the current one keeps it unchanged for the tests running beside.
        var result = OnnxReferenceCheck.Run(MiniLmCheckSentences.All, threads: TorchSharp.torch.get_num_threads(), batchSize: 16);
        output.WriteLine(result.ToString());

        Assert.True(result.Sentences >= 64, $"only {result.Sentences} sentences");
        Assert.True(result.PaddedPositions > 0, "no batch was padded");
        Assert.Equal(MiniLmTokenizer.DefaultMaxLength, result.LongestSequence); // some sentence was truncated
        Assert.True(result.MaxAbsDiffHidden <= Tolerance, $"last_hidden_state differs by {result.MaxAbsDiffHidden:E3}");
        Assert.True(result.MaxAbsDiffPooled <= Tolerance, $"pooled embeddings differ by {result.MaxAbsDiffPooled:E3}");
        Assert.True(result.MaxAbsDiffNormalized <= Tolerance, $"normalized embeddings differ by {result.MaxAbsDiffNormalized:E3}");
        Assert.True(result.MaxAbsDiffPoolerOutput <= Tolerance, $"pooler output differs by {result.MaxAbsDiffPoolerOutput:E3}");
        Assert.True(result.MinCosine > 1 - 1e-6, $"a sentence's cosine with ORT is {result.MinCosine}");
    }
}
