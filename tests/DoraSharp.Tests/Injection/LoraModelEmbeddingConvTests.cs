using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>Injection into a model with an Embedding and Conv2d layers next to a Linear one.</summary>
public sealed class LoraModelEmbeddingConvTests
{
    private static LoraConfig Config(bool dora) => new() { R = 2, LoraAlpha = 4, UseDora = dora, TargetModules = ["embed", "conv", "head"] };

    private static Tensor Tokens(long seed) => randint(0, 20, new long[] { 5, 8 }, dtype: ScalarType.Int64, generator: new Generator().manual_seed(seed));

    /// <summary>Both factors random: at init an embedding's A and a conv's or linear's B are zero, so nothing acts.</summary>
    private static void Train(LoraModel lora, long seed = 7)
    {
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        foreach (var layer in lora.Layers.Values)
        {
            layer.LoraA.copy_(randn(layer.LoraA.shape, generator: g) * 0.3);
            layer.LoraB.copy_(randn(layer.LoraB.shape, generator: g) * 0.3);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Wrap_adapts_the_Embedding_and_Conv2d_with_PEFTs_state_dict_keys(bool dora)
    {
        torch.manual_seed(1);
        var model = new TokenConvNet();
        var baseKeys = model.state_dict().Keys.ToList();
        var x = Tokens(1);
        var before = model.call(x).detach();

        var lora = LoraModel.Wrap(model, Config(dora));

        Assert.Equal(new[] { "embed", "conv", "head" }, lora.Layers.Keys);
        Assert.IsType<LoraEmbedding>(lora.Layers["embed"]);
        Assert.IsType<LoraConv2d>(lora.Layers["conv"]);
        Assert.IsType<LoraLinear>(lora.Layers["head"]);
        Assert.True(ConvBackwardGuard.Report is { Correct: true }, "Wrap runs the conv backward guard for a model with convolutions");

        // Base keys unchanged; adapter keys as in PEFT's adapter files (and its state dict less the adapter name).
        var sd = model.state_dict();
        Assert.Subset(sd.Keys.ToHashSet(), baseKeys.ToHashSet());
        var expected = new Dictionary<string, long[]>
        {
            ["embed.lora_embedding_A"] = new long[] { 2, 20 },
            ["embed.lora_embedding_B"] = new long[] { 8, 2 },
            ["conv.lora_A.weight"] = new long[] { 2, 1, 3, 3 },
            ["conv.lora_B.weight"] = new long[] { 4, 2, 1, 1 },
            ["head.lora_A.weight"] = new long[] { 2, 128 },
            ["head.lora_B.weight"] = new long[] { 3, 2 },
        };
        if (dora)
        {
            expected["embed.lora_magnitude_vector"] = new long[] { 8 };
            expected["conv.lora_magnitude_vector"] = new long[] { 1, 4, 1, 1 };
            expected["head.lora_magnitude_vector"] = new long[] { 3 };
        }
        Assert.Equal(expected.Keys.Order(), sd.Keys.Except(baseKeys).Order());
        foreach (var (k, shape) in expected) Assert.Equal(shape, sd[k].shape);

        // Only the adapters train; at init the model is the base model; trained adapters act.
        Assert.Equal(expected.Keys.Order(), model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).Order());
        TensorAssert.Close(before, model.call(x), 0, 1e-6, "output at init");
        Train(lora);
        var after = model.call(x).detach();
        Assert.False(before.allclose(after, rtol: 0, atol: 1e-3), "adapters do not reach the forward pass");
        using (lora.DisableAdapters())
            TensorAssert.Equal(before, model.call(x), "disabled adapters");
        TensorAssert.Equal(after, model.call(x), "re-enabled adapters");

        // Every adapter parameter gets a gradient: through the frozen 1x1 conv and back into the embedding.
        model.train();
        model.call(x).sum().backward();
        foreach (var (name, p) in model.named_parameters().Where(p => p.parameter.requires_grad))
            Assert.True(p.grad is not null && p.grad.abs().max().item<float>() > 0, $"{name} has no gradient");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_unmerge_and_merge_and_unload_restore_plain_layers(bool dora)
    {
        torch.manual_seed(3);
        var model = new TokenConvNet();
        var lora = LoraModel.Wrap(model, Config(dora));
        Train(lora);
        var baseWeights = model.state_dict().Where(kv => !kv.Key.Contains("lora_")).ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var x = Tokens(2);
        model.eval();
        var adapted = model.call(x).detach();

        lora.Merge();
        TensorAssert.Close(adapted, model.call(x), 1e-5, 1e-5, "merged output");
        lora.Unmerge();
        foreach (var (k, w) in baseWeights)
            TensorAssert.Close(w, model.state_dict()[k], 1e-6, 1e-6, $"{k} after unmerge");

        var plain = lora.MergeAndUnload();
        Assert.Same(model, plain);
        Assert.Empty(plain.modules().OfType<LoraLayer>());
        Assert.Contains(plain.modules(), m => m is Embedding);
        Assert.Equal(2, plain.modules().OfType<Conv2d>().Count());
        Assert.Equal(baseWeights.Keys.Order(), plain.state_dict().Keys.Order());
        TensorAssert.Close(adapted, model.call(x), 1e-5, 1e-5, "output after merge_and_unload");
    }

    [Fact]
    public void A_refused_convolution_rolls_back_the_layers_already_adapted()
    {
        torch.manual_seed(4);
        var model = new GroupedConvNet();
        var keys = model.state_dict().Keys.ToList();
        var x = randn(2, 2, 5, 5);
        var before = model.call(x).detach();
        var e = Assert.Throws<AdapterInjectionException>(() => LoraModel.Wrap(model, new LoraConfig { UseDora = true, TargetModulesRegex = ".*" }));
        Assert.StartsWith("Module 'grouped': Cannot adapt a Conv2d with groups = 2", e.Message);
        Assert.Contains("ExcludeModules", e.Message);
        Assert.Equal(keys, model.state_dict().Keys.ToList());
        Assert.Empty(model.modules().OfType<LoraLayer>());
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
        TensorAssert.Equal(before, model.call(x), "output after the refused wrap");

        // Excluded, the grouped convolution stays as it is and the rest is adapted.
        var lora = LoraModel.Wrap(model, new LoraConfig { UseDora = true, TargetModulesRegex = ".*", ExcludeModules = ["grouped"] });
        Assert.Equal(new[] { "first" }, lora.Layers.Keys);
        Assert.IsType<LoraConv2d>(lora.Layers["first"]);
    }
}
