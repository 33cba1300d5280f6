using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Layers;

/// <summary>The variant seam: a layer computes LoRA itself and hands DoRA to the variant chosen for its type.</summary>
public sealed class LoraVariantsTests
{
    private static LoraConfig Config(bool dora) => new() { R = 2, LoraAlpha = 4, UseDora = dora, TargetModules = ["x"] };

    [Fact]
    public void Plain_LoRA_layers_have_no_variant_and_no_magnitude()
    {
        using var linear = new LoraLinear(nn.Linear(4, 3), Config(false));
        using var conv = new LoraConv2d(nn.Conv2d(2, 3, 3), Config(false));
        using var embedding = new LoraEmbedding(nn.Embedding(5, 3), Config(false));
        foreach (LoraLayer layer in new LoraLayer[] { linear, conv, embedding })
        {
            Assert.Null(layer.Variant);
            Assert.Null(layer.Magnitude);
            Assert.DoesNotContain(layer.named_parameters(), p => p.name == LoraLayer.MagnitudeName);
            var error = Assert.Throws<InvalidOperationException>(layer.ResetMagnitude);
            Assert.Contains("is LoRA, not DoRA", error.Message);
        }
    }

    [Fact]
    public void DoRA_layers_get_their_type_s_variant_which_registers_the_magnitude_last_in_PEFT_s_shape()
    {
        using var linear = new LoraLinear(nn.Linear(4, 3), Config(true));
        using var conv = new LoraConv2d(nn.Conv2d(2, 3, 3), Config(true));
        using var embedding = new LoraEmbedding(nn.Embedding(5, 3), Config(true));
        Assert.IsType<DoraLinearVariant>(linear.Variant);
        Assert.IsType<DoraConv2dVariant>(conv.Variant);
        Assert.IsType<DoraEmbeddingVariant>(embedding.Variant);
        Assert.Equal(new long[] { 3 }, linear.Magnitude!.shape);
        Assert.Equal(new long[] { 1, 3, 1, 1 }, conv.Magnitude!.shape);
        Assert.Equal(new long[] { 3 }, embedding.Magnitude!.shape);
        foreach (LoraLayer layer in new LoraLayer[] { linear, conv, embedding })
            Assert.Equal(LoraLayer.MagnitudeName, layer.named_parameters(recurse: false).Last().name);
    }

    [Fact]
    public void Every_row_norm_mode_gives_the_same_norm_up_to_rounding()
    {
        using var scope = NewDisposeScope();
        using var layer = new LoraLinear(nn.Linear(6, 5), Config(true));
        using (no_grad()) layer.LoraB.copy_(randn(5, 2));
        var dora = (DoraVariant)layer.Variant!;
        var reference = dora.RowNorm(layer, RowNormMode.Reference);
        foreach (var mode in new[] { RowNormMode.Factored, RowNormMode.Cached, RowNormMode.FromDelta })
            Assert.True(dora.RowNorm(layer, mode).allclose(reference, rtol: 1e-5, atol: 1e-6), $"{mode} differs from Reference");
        Assert.Throws<ArgumentOutOfRangeException>(() => dora.RowNorm(layer, (RowNormMode)42));
    }
}
