using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Interop;

/// <summary>TorchSharpInternals: the one place DoraSharp reads TorchSharp's private members, and its loud check.</summary>
public sealed class TorchSharpInternalsTests
{
    [Fact]
    public void A_missing_field_is_reported_with_the_TorchSharp_version_and_the_field()
    {
        var error = Assert.Throws<MissingFieldException>(() => TorchSharpInternals.RequireField(typeof(nn.Module), "_no_such_field"));
        var version = typeof(torch).Assembly.GetName().Version!.ToString();
        Assert.Contains($"TorchSharp {version}", error.Message);
        Assert.Contains("TorchSharp.torch+nn+Module._no_such_field", error.Message);
        Assert.Contains("0.107", error.Message);
    }

    [Fact]
    public void Every_field_DoraSharp_relies_on_exists_in_this_TorchSharp()
    {
        using var linear = nn.Linear(3, 2);
        using var sequential = nn.Sequential(("a", nn.Linear(2, 2)));
        using var adapter = new LoraLinear(nn.Linear(3, 2), new LoraConfig { R = 1, TargetModules = ["x"] });
        Assert.Equal(new[] { "weight", "bias" }, TorchSharpInternals.ParameterTable(linear).Keys);
        Assert.Equal(new[] { "lora_A", "lora_B" }, TorchSharpInternals.SubmoduleTable(adapter).Keys);
        Assert.Equal(1, TorchSharpInternals.SequentialModules(sequential).Count);
    }

    [Fact]
    public void RebindParameter_rebinds_the_table_entry_and_the_field_behind_the_property()
    {
        using var linear = nn.Linear(3, 2);
        var replacement = new Parameter(zeros(2, 3));
        TorchSharpInternals.RebindParameter(linear, "weight", replacement);
        Assert.Same(replacement, linear.get_parameter("weight"));
        Assert.Same(replacement, linear.weight);
    }
}
