using System.Text;
using DoraSharp.IO;
using Xunit;

namespace DoraSharp.Tests.IO;

/// <summary>The config model against the adapter_config.json PEFT wrote (Golden/peft_adapter_mlp).</summary>
public sealed class PeftConfigTests
{
    private static PeftAdapterConfig ParseText(string text) =>
        PeftConfigReader.Parse("adapter_config.json", Encoding.UTF8.GetBytes(text));

    [Fact]
    public void PEFTs_config_reads_back_and_writes_out_byte_for_byte()
    {
        PeftAdapterConfig config = PeftConfigReader.Read(AdapterFixture.ConfigPath);

        Assert.Equal("LORA", config.PeftType);
        Assert.Equal(4, config.Lora.R);
        Assert.Equal(8.0, config.Lora.LoraAlpha);
        Assert.True(config.Lora.UseDora);
        Assert.True(config.InferenceMode);
        Assert.Equal(new PeftAutoMapping("MLP", "__main__"), config.AutoMapping);
        Assert.Equal("0.20.1.dev0@5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40", config.PeftVersion);
        Assert.Empty(config.IgnoredFields); // this version knows every field PEFT 0.20.1.dev0 writes
        Assert.Equal(AdapterFixture.ConfigText, PeftConfigWriter.Write(config));
    }

    [Fact]
    public void Unknown_fields_are_ignored_and_listed()
    {
        var config = ParseText("{\"peft_type\": \"LORA\", \"target_modules\": \"fc\", \"z_new\": {\"a\": [1]}, \"a_new\": null}");
        Assert.Equal(["z_new", "a_new"], config.IgnoredFields);
        Assert.Equal("fc", config.Lora.TargetModulesRegex);
    }

    [Fact]
    public void Absent_fields_take_PEFTs_defaults()
    {
        var config = ParseText("{\"peft_type\": \"LORA\", \"target_modules\": [\"fc\"]}").ToLoraConfig();
        Assert.Equal(8, config.R);
        Assert.Equal(8.0, config.LoraAlpha);
        Assert.Equal(0.0, config.LoraDropout);
        Assert.False(config.UseDora);
        Assert.False(config.UseRsLora);
        Assert.Equal(LoraInit.Default, config.InitLoraWeights);
    }

    [Theory]
    [InlineData("true", LoraInit.Default)]
    [InlineData("false", LoraInit.Default)]
    [InlineData("\"gaussian\"", LoraInit.Gaussian)]
    [InlineData("\"Gaussian\"", LoraInit.Gaussian)]
    [InlineData("\"orthogonal\"", LoraInit.Default)]
    [InlineData("\"eva\"", LoraInit.Default)]
    public void Init_schemes_that_only_set_the_starting_factors_map_to_LoraInit(string json, LoraInit expected)
    {
        var config = ParseText($"{{\"peft_type\": \"LORA\", \"target_modules\": [\"fc\"], \"init_lora_weights\": {json}}}").ToLoraConfig();
        Assert.Equal(expected, config.InitLoraWeights);
    }
}
