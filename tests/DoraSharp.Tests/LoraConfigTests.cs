using Xunit;

namespace DoraSharp.Tests;

public sealed class LoraConfigTests
{
    private static readonly LoraConfig Valid = new() { TargetModules = ["fc"] };

    [Fact]
    public void Defaults_are_PEFTs()
    {
        var c = new LoraConfig();
        Assert.Equal(8, c.R);
        Assert.Equal(8, c.LoraAlpha);
        Assert.Equal(0, c.LoraDropout);
        Assert.False(c.UseDora);
        Assert.False(c.UseRsLora);
        Assert.Equal(LoraInit.Default, c.InitLoraWeights);
        Assert.Equal(LoraBias.None, c.Bias);
        Assert.Equal(1.0, c.Scaling);
    }

    [Theory]
    [InlineData(8, 16, false, 2.0)]
    [InlineData(4, 8, true, 4.0)]     // 8 / sqrt(4)
    [InlineData(16, 8, true, 2.0)]    // 8 / sqrt(16)
    [InlineData(3, 1, false, 1.0 / 3)]
    public void Scaling_is_alpha_over_r_or_over_sqrt_r(int r, double alpha, bool rs, double expected)
        => Assert.Equal(expected, (Valid with { R = r, LoraAlpha = alpha, UseRsLora = rs }).Scaling, 15);

    public static TheoryData<LoraConfig, string, string> Invalid() => new()
    {
        { Valid with { R = 0 }, "R", "= 0" },
        { Valid with { R = -3 }, "R", "= -3" },
        { Valid with { LoraAlpha = 0 }, "LoraAlpha", "= 0" },
        { Valid with { LoraAlpha = -1 }, "LoraAlpha", "= -1" },
        { Valid with { LoraAlpha = double.NaN }, "LoraAlpha", "NaN" },
        { Valid with { LoraAlpha = 1e30 }, "LoraAlpha", "s = lora_alpha / r = 1.25E+29" },
        { Valid with { LoraAlpha = 8e6 + 8 }, "LoraAlpha", "must be in [1E-12, 1000000]" },
        { Valid with { LoraAlpha = 1e30, UseRsLora = true }, "LoraAlpha", "and use_rslora the scaling s = lora_alpha / sqrt(r)" },
        { Valid with { LoraAlpha = 1e-300 }, "LoraAlpha", "= 1E-300" },
        { Valid with { LoraAlpha = double.Epsilon }, "LoraAlpha", "s = lora_alpha / r = 0," },
        { Valid with { LoraDropout = 1 }, "LoraDropout", "= 1" },
        { Valid with { LoraDropout = -0.1 }, "LoraDropout", "= -0.1" },
        { Valid with { TargetModules = null }, "TargetModules", "null" },
        { Valid with { TargetModules = [] }, "TargetModules", "[]" },
        { Valid with { TargetModules = ["fc", " "] }, "TargetModules", "' '" },
        { Valid with { TargetModulesRegex = "fc" }, "TargetModulesRegex", "not both" },
        { Valid with { TargetModules = null, TargetModulesRegex = "(" }, "TargetModulesRegex", "not a valid regular expression" },
        { Valid with { InitLoraWeights = (LoraInit)7 }, "InitLoraWeights", "= 7" },
    };

    [Theory]
    [MemberData(nameof(Invalid))]
    public void Invalid_options_name_the_option_and_value(LoraConfig config, string option, string fragment)
    {
        var e = Assert.Throws<LoraConfigException>(config.Validate);
        Assert.Equal(option, e.Option);
        Assert.Contains($"LoraConfig.{option}", e.Message);
        Assert.Contains(fragment, e.Message);
    }

    [Theory]
    [InlineData(8, 8e6, false)]       // s = 1e6 exactly, the largest accepted
    [InlineData(4, 2e6, true)]        // 2e6 / sqrt(4) = 1e6
    [InlineData(1, 1e-12, false)]     // s = 1e-12, the smallest accepted
    [InlineData(2048, 4096, true)]    // rsLoRA at a large rank: s ≈ 90.5, ordinary
    public void Scalings_at_the_limits_are_accepted(int r, double alpha, bool rs)
        => (Valid with { R = r, LoraAlpha = alpha, UseRsLora = rs }).Validate();

    [Fact]
    public void An_adapter_layer_built_directly_refuses_a_scaling_that_overflows_float32()
    {
        // Before the range check this reached libtorch: "value cannot be converted to type float without overflow"
        // (ExternalException) from the DoRA norm's s² term.
        using var linear = TorchSharp.torch.nn.Linear(6, 4);
        var e = Assert.Throws<LoraConfigException>(() => new LoraLinear(linear, Valid with { LoraAlpha = 1e30, UseDora = true }));
        Assert.Equal("LoraAlpha", e.Option);
        Assert.True(linear.weight!.requires_grad, "the refused layer left the base layer as it was");
    }

    public static TheoryData<string, int, string> HugeRanks() => new()
    {
        // r × (in + out) for a Linear, r × (num + dim) for an Embedding, r × (in·kh·kw + out) for a Conv2d, above 2^31.
        { "linear", int.MaxValue, "LoraLinear adapter of a weight of shape [32, 784] would hold r × 816" },
        { "small-linear", (1 << 28) + 1, "LoraLinear adapter of a weight of shape [5, 3] would hold r × 8 = 2.147e9 values" },
        { "embedding", int.MaxValue, "LoraEmbedding adapter of a weight of shape [20, 8] would hold r × 28" },
        { "conv", int.MaxValue, "LoraConv2d adapter of a weight of shape [4, 2, 3, 3] would hold r × 22" },
    };

    [Theory]
    [MemberData(nameof(HugeRanks))]
    public void A_rank_whose_adapter_would_exceed_2_to_the_31_values_is_refused_before_allocating(string layer, int r, string fragment)
    {
        // Before the check, libtorch's allocator failed with an ExternalException (or, on a host that overcommits
        // memory, the process was killed while the factors were initialised).
        using TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> module = layer switch
        {
            "linear" => TorchSharp.torch.nn.Linear(784, 32),
            "small-linear" => TorchSharp.torch.nn.Linear(3, 5),
            "embedding" => TorchSharp.torch.nn.Embedding(20, 8),
            _ => TorchSharp.torch.nn.Conv2d(2, 4, 3),
        };
        var config = Valid with { R = r, LoraAlpha = r };
        var e = Assert.Throws<LoraConfigException>(() => LoraLayerFactory.Create(module, config));
        Assert.Equal("R", e.Option);
        Assert.Contains(fragment, e.Message);
        Assert.All(module.parameters(), p => Assert.True(p.requires_grad, "the refused layer left the base layer as it was"));
    }

    [Fact]
    public void Wrap_validates_before_touching_the_model()
    {
        var model = new Mlp();
        var keys = model.state_dict().Keys.ToList();
        var e = Assert.Throws<LoraConfigException>(() => LoraModel.Wrap(model, new LoraConfig { R = 0, TargetModules = ["layers.0"] }));
        Assert.Equal("R", e.Option);
        Assert.Equal(keys, model.state_dict().Keys.ToList());
    }
}
