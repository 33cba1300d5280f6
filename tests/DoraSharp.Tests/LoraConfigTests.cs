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
