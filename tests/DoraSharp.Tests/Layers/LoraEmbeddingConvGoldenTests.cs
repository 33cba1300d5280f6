using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// The Embedding and Conv2d golden cases computed by PEFT (Golden/README.md), with the same checks as the
/// Linear ones: forward output, every gradient, the initial magnitude, the merged weight and the eval output,
/// within the manifest's tolerances, through both DoRA paths; an <c>_init</c> case must equal the base layer
/// bit for bit. Also runs such cases of any directory named by DORA_GOLDEN_DIR.
/// </summary>
public sealed class LoraEmbeddingConvGoldenTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var (key, c) in GoldenCase.All().Where(c => c.Case.Layer is "embedding" or "conv2d"))
        {
            data.Add(key, "fast");
            if (c.IsDora) data.Add(key, "reference");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Case_matches_PEFT(string caseKey, string path)
    {
        var golden = GoldenCase.ByKey(caseKey);
        using var scope = NewDisposeScope();
        var t = golden.LoadTensors();
        var config = GoldenLayerHarness.Config(golden);

        // The base layer's own forward is the reference for "equals the base layer".
        nn.Module<Tensor, Tensor> baseLayer;
        LoraLayer layer;
        if (golden.Layer == "embedding")
        {
            var embedding = nn.Embedding(golden.InFeatures, golden.OutFeatures, padding_idx: golden.PaddingIdx, dtype: golden.DType);
            using (no_grad()) embedding.weight!.copy_(t["W"]);
            baseLayer = embedding;
            layer = new LoraEmbedding(embedding, config);
        }
        else
        {
            Assert.Equal(1, golden.ConvGroups);
            var conv = nn.Conv2d(golden.InFeatures, golden.OutFeatures, golden.Conv("kernel_size"), golden.Conv("stride"),
                golden.Conv("padding"), golden.Conv("dilation"), bias: golden.HasBias, dtype: golden.DType);
            using (no_grad())
            {
                conv.weight.copy_(t["W"]);
                if (golden.HasBias) conv.bias!.copy_(t["bias"]);
            }
            baseLayer = conv;
            var convLayer = new LoraConv2d(conv, config);
            if (t.TryGetValue("dropout_mask", out var mask)) convLayer.DropoutOverride = x => x.mul(mask);
            layer = convLayer;
            if (golden.DType == ScalarType.Float32)
            {
                // The float32 input gradient is only trustworthy once the backend check has passed; the adapter's
                // constructor ran it (and switched oneDNN off had the fault been present).
                Assert.True(ConvBackwardGuard.Report is { Correct: true }, $"conv backward check: {ConvBackwardGuard.Report}");
            }
        }
        layer.UseReferenceDora = path == "reference";
        GoldenLayerHarness.LoadFactors(golden, t, layer);

        // An Embedding's input is indices: no gradient; a Conv2d's input gradient is checked too.
        var input = golden.Layer == "embedding" ? t["x"] : t["x"].clone().requires_grad_(true);
        GoldenLayerHarness.CheckTraining(golden, t, layer, input,
            output: y => { if (golden.Init) AssertInitEqualsBase(golden, baseLayer, layer, t["x"], y, path, "train"); });
        GoldenLayerHarness.CheckEvalAndMerge(golden, t, layer,
            evalOutput: yEval => { if (golden.Init) AssertInitEqualsBase(golden, baseLayer, layer, t["x"], yEval, path, "eval"); });
    }

    /// <summary>
    /// "At initialisation the adapted layer equals the base layer", said precisely (issue 13; see the Linear golden
    /// tests). An Embedding computes it exactly on every path: a gather, then (m/n)·result with m/n == 1 and a LoRA
    /// term that is exactly 0 (A = 0 at init). A Conv2d's reference path adds exact zeros to the base's own conv2d; its
    /// fast path runs conv2d without bias, then ·(m/n) + bias, another rounding order than the base's conv2d with bias,
    /// so it is compared within a few ulps of the terms' magnitude, conv2d(|x|, |W|) + |b|.
    /// </summary>
    private static void AssertInitEqualsBase(GoldenCase golden, nn.Module<Tensor, Tensor> baseLayer, LoraLayer layer, Tensor x, Tensor y, string path, string mode)
    {
        var expected = baseLayer.call(x);
        if (golden.Layer == "embedding" || path == "reference" || !golden.IsDora)
        {
            TensorAssert.Equal(expected, y, $"init output ({mode}) vs base");
            return;
        }
        var scale = nn.functional.conv2d(x.detach().abs(), layer.Weight.detach().abs(), layer.Bias?.detach().abs(),
            strides: [golden.Conv("stride").Item1, golden.Conv("stride").Item2], padding: [golden.Conv("padding").Item1, golden.Conv("padding").Item2],
            dilation: [golden.Conv("dilation").Item1, golden.Conv("dilation").Item2]);
        TensorAssert.WithinUlps(expected, y, scale, 4, $"init output ({mode}, fast DoRA path) vs base");
    }

    [Fact]
    public void Built_in_golden_directory_holds_the_embedding_and_conv2d_cases()
    {
        var cases = GoldenCase.LoadManifest(GoldenCase.BuiltInDirectory);
        Assert.Equal(4, cases.Count(c => c.Layer == "embedding"));
        Assert.Equal(5, cases.Count(c => c.Layer == "conv2d"));
        Assert.Equal(cases.Count, cases.Count(c => c.Layer is "linear" or "embedding" or "conv2d"));
    }
}
