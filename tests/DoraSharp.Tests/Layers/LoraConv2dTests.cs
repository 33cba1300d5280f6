using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp.Tests;

public sealed class LoraConv2dTests
{
    private static LoraConfig Config(bool dora, double dropout = 0, LoraInit init = LoraInit.Default)
        => new() { R = 4, LoraAlpha = 8, UseDora = dora, LoraDropout = dropout, TargetModules = ["x"], InitLoraWeights = init };

    /// <summary>Gives B (and, for DoRA, m) values, as after training: at init B = 0 and the adapter is silent.</summary>
    private static void Train(LoraConv2d layer, long seed = 3)
    {
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        layer.LoraB.copy_(randn(layer.LoraB.shape, generator: g, dtype: layer.LoraB.dtype) * 0.3);
        if (layer.UseDora) layer.ResetMagnitude();
        layer.Magnitude?.mul_(rand(layer.Magnitude.shape, generator: g, dtype: layer.Magnitude.dtype) * 0.4 + 0.8);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Init_is_Kaiming_uniform_A_and_zero_B_so_the_layer_starts_as_the_base(bool dora)
    {
        torch.manual_seed(0);
        var conv = nn.Conv2d(16, 8, 3, padding: 1);
        var layer = new LoraConv2d(conv, Config(dora));
        Assert.Equal(0, layer.LoraB.abs().max().item<float>());
        // kaiming_uniform_(a=sqrt(5)) on (r, in, kh, kw): U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in·kh·kw = 144.
        Assert.True(layer.LoraA.abs().max().item<float>() <= 1 / System.Math.Sqrt(144) + 1e-7);
        Assert.InRange(layer.LoraA.var().item<float>(), 0.8 / (3 * 144), 1.2 / (3 * 144));
        var x = randn(2, 16, 7, 7);
        layer.train();
        TensorAssert.Close(conv.call(x), layer.call(x), 0, 1e-6, "train output at init vs base");
        layer.eval();
        TensorAssert.Close(conv.call(x), layer.call(x), 0, 1e-6, "eval output at init vs base");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void State_dict_has_PEFTs_keys_and_shapes(bool dora)
    {
        var layer = new LoraConv2d(nn.Conv2d(3, 8, (5, 3), stride: (2, 1), padding: (1, 2)), Config(dora));
        var sd = layer.state_dict();
        var expected = new Dictionary<string, long[]>
        {
            ["weight"] = new long[] { 8, 3, 5, 3 },
            ["bias"] = new long[] { 8 },
            ["lora_A.weight"] = new long[] { 4, 3, 5, 3 },
            ["lora_B.weight"] = new long[] { 8, 4, 1, 1 },
        };
        if (dora) expected["lora_magnitude_vector"] = new long[] { 1, 8, 1, 1 };
        Assert.Equal(expected.Keys.Order(), sd.Keys.Order());
        foreach (var (k, shape) in expected) Assert.Equal(shape, sd[k].shape);
        Assert.False(layer.Weight.requires_grad);
        Assert.False(layer.Bias!.requires_grad);
    }

    [Theory]
    [InlineData(3, 3, 1, 1)]
    [InlineData(1, 1, 1, 0)]
    [InlineData(5, 3, 2, 1)]
    public void Delta_weight_is_B_times_A_reshaped(long kh, long kw, long stride, long padding)
    {
        // PEFT computes ΔW by a convolution for kernels > 1×1 and by a matrix product for 1×1: both are s·B·A.
        torch.manual_seed(1);
        var layer = new LoraConv2d(nn.Conv2d(6, 10, (kh, kw), stride: (stride, stride), padding: (padding, padding), dtype: ScalarType.Float64), Config(false));
        Train(layer);
        var expected = layer.LoraB.reshape(10, 4).mm(layer.LoraA.reshape(4, -1)).reshape(10, 6, kh, kw) * 2.0;
        TensorAssert.Close(expected, layer.DeltaWeight(), 1e-12, 1e-14, "ΔW");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fast_and_reference_DoRA_agree(bool eval)
    {
        torch.manual_seed(2);
        var conv = nn.Conv2d(5, 7, 3, stride: 2, padding: 1);
        var fast = new LoraConv2d(conv, Config(true));
        Train(fast);
        var reference = new LoraConv2d(conv, Config(true)) { UseReferenceDora = true };
        reference.load_state_dict(fast.state_dict());
        if (eval) { fast.eval(); reference.eval(); } else { fast.train(); reference.train(); }
        var x = randn(3, 5, 9, 9);
        TensorAssert.Close(reference.call(x), fast.call(x), 1e-5, 1e-6, "output");
        TensorAssert.Close(((DoraVariant)reference.Variant!).RowNorm(reference, RowNormMode.Reference), ((DoraVariant)fast.Variant!).RowNorm(fast, RowNormMode.Factored), 1e-6, 1e-7, "norm");
    }

    [Fact]
    public void Groups_dilation_and_padding_modes_PEFT_cannot_follow_are_refused()
    {
        var grouped = nn.Conv2d(4, 8, 3, groups: 2);
        var e = Assert.Throws<AdapterInjectionException>(() => new LoraConv2d(grouped, Config(false)));
        Assert.Contains("groups = 2", e.Message);
        Assert.True(grouped.weight.requires_grad, "a refused layer is left untouched");

        e = Assert.Throws<AdapterInjectionException>(() => new LoraConv2d(nn.Conv2d(4, 8, 3, dilation: 2), Config(false)));
        Assert.Contains("dilation (2, 2)", e.Message);

        e = Assert.Throws<AdapterInjectionException>(() => new LoraConv2d(nn.Conv2d(4, 8, 3, padding: 1, padding_mode: PaddingModes.Reflect), Config(true)));
        Assert.Contains("padding mode Reflect", e.Message);

        // Where PEFT's lora_A agrees with the base layer anyway, they are accepted.
        _ = new LoraConv2d(nn.Conv2d(4, 8, 1, dilation: 2), Config(false));
        _ = new LoraConv2d(nn.Conv2d(4, 8, 3, padding_mode: PaddingModes.Reflect), Config(false));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Dropout_applies_to_the_adapter_path_in_training_only(bool dora)
    {
        torch.manual_seed(5);
        var layer = new LoraConv2d(nn.Conv2d(3, 6, 3, padding: 1), Config(dora, dropout: 0.5));
        Train(layer);
        var x = randn(4, 3, 6, 6);
        layer.train();
        Assert.False(layer.call(x).allclose(layer.call(x)), "two training passes with dropout 0.5 should differ");
        layer.eval();
        var e1 = layer.call(x);
        var noDrop = new LoraConv2d(nn.Conv2d(3, 6, 3, padding: 1), Config(dora));
        noDrop.load_state_dict(layer.state_dict());
        noDrop.eval();
        TensorAssert.Close(noDrop.call(x), e1, 1e-5, 1e-6, "eval output with vs without dropout configured");
    }

    [Fact]
    public void With_a_fixed_dropout_mask_DoRA_corrects_the_dropped_input_as_PEFT_does()
    {
        torch.manual_seed(6);
        var conv = nn.Conv2d(3, 5, 3, padding: 1, dtype: ScalarType.Float64);
        var layer = new LoraConv2d(conv, Config(true, dropout: 0.5));
        Train(layer);
        var x = randn(2, 3, 5, 5, dtype: ScalarType.Float64);
        var mask = bernoulli(full_like(x, 0.5)) * 2;
        layer.DropoutOverride = t => t.mul(mask);
        layer.train();
        // PEFT: base(x) + (m/n − 1)·conv(x~, W) + (m/n)·s·B(A(x~)), x~ = dropout(x).
        var xd = x * mask;
        var scale = (layer.Magnitude!.reshape(-1) / ((DoraVariant)layer.Variant!).RowNorm(layer, RowNormMode.Reference)).view(1, -1, 1, 1);
        var loraOut = F.conv2d(F.conv2d(xd, layer.LoraA, padding: new long[] { 1, 1 }), layer.LoraB);
        var expected = conv.call(x) + (scale - 1) * F.conv2d(xd, conv.weight, padding: new long[] { 1, 1 }) + scale * loraOut * 2.0;
        TensorAssert.Close(expected, layer.call(x), 1e-12, 1e-12, "dropout forward");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Unbatched_input_gives_the_unbatched_output(bool dora)
    {
        torch.manual_seed(7);
        var layer = new LoraConv2d(nn.Conv2d(3, 4, 3), Config(dora));
        Train(layer);
        var x = randn(3, 6, 6);
        var y = layer.call(x);
        Assert.Equal(new long[] { 4, 4, 4 }, y.shape);
        TensorAssert.Close(layer.call(x.unsqueeze(0))[0], y, 1e-6, 1e-7, "unbatched");
    }

    [Theory]
    [InlineData(false, 3, 3, 1, 1, false)]
    [InlineData(true, 3, 3, 1, 1, false)]
    [InlineData(true, 5, 3, 2, 1, false)]
    [InlineData(true, 1, 1, 1, 0, false)]
    [InlineData(false, 3, 3, 1, 0, true)]
    [InlineData(true, 4, 4, 1, 0, true)]
    public void Merge_unmerge_and_unload_round_trip(bool dora, long kh, long kw, long stride, long padding, bool same)
    {
        torch.manual_seed(8);
        var conv = same
            ? nn.Conv2d(4, 6, (kh, kw), Padding.Same)
            : nn.Conv2d(4, 6, (kh, kw), stride: (stride, stride), padding: (padding, padding));
        var original = conv.weight.detach().clone();
        var bias = conv.bias!.detach().clone();
        var layer = new LoraConv2d(conv, Config(dora));
        Train(layer);
        var x = randn(2, 4, 9, 9);
        layer.eval();
        var adapted = layer.call(x).detach().clone();
        Assert.False(adapted.allclose(conv.call(x), rtol: 0, atol: 1e-3), "the trained adapter must act");

        layer.Merge();
        TensorAssert.Close(adapted, layer.call(x), 1e-5, 1e-5, "merged output");
        layer.Unmerge();
        TensorAssert.Close(original, layer.Weight, 1e-6, 1e-6, "weight after unmerge");
        TensorAssert.Equal(bias, layer.Bias!.detach(), "bias");
        TensorAssert.Close(adapted, layer.call(x), 1e-5, 1e-5, "unmerged output");

        layer.Merge();
        var plain = (Conv2d)layer.Unload();
        Assert.Same(conv, plain);
        TensorAssert.Close(adapted, plain.call(x), 1e-5, 1e-5, "unloaded conv's output");
    }
}
