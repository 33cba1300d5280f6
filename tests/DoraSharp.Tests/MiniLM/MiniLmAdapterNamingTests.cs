using System.Text.Json;
using DoraSharp.IO;
using DoraSharp.MiniLM;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// Adapters on all-MiniLM-L6-v2 carry Hugging Face BertModel's module paths and PEFT's key names, so an adapter
/// saved from here is one PEFT can load onto <c>BertModel</c> (target_modules=["query", "value"]).
/// </summary>
public sealed class MiniLmAdapterNamingTests
{
    private const int Hidden = 384;

    private static readonly string[] ExpectedPaths = Enumerable.Range(0, 6)
        .SelectMany(i => new[] { $"encoder.layer.{i}.attention.self.query", $"encoder.layer.{i}.attention.self.value" })
        .ToArray();

    [Theory]
    [InlineData(false, 4)]
    [InlineData(true, 4)]
    [InlineData(true, 8)]
    public void Query_value_targets_adapt_exactly_the_twelve_hugging_face_projections_with_peft_keys_and_shapes(bool dora, int r)
    {
        using var encoder = new BertEncoder(BertConfig.AllMiniLmL6V2);
        var baseKeys = encoder.state_dict().Keys.ToArray();
        var lora = LoraModel.Wrap(encoder, new LoraConfig { R = r, LoraAlpha = 2 * r, UseDora = dora, TargetModules = ["query", "value"] });

        Assert.Equal(ExpectedPaths, lora.Layers.Keys);
        Assert.Empty(lora.Report.UnmatchedTargets);

        var state = encoder.state_dict();
        var adapterKeys = state.Keys.Where(k => !baseKeys.Contains(k)).ToArray();
        var expected = new Dictionary<string, long[]>();
        foreach (var path in ExpectedPaths)
        {
            expected[$"{path}.lora_A.weight"] = [r, Hidden];
            expected[$"{path}.lora_B.weight"] = [Hidden, r];
            if (dora) expected[$"{path}.lora_magnitude_vector"] = [Hidden];
        }
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), adapterKeys.Order(StringComparer.Ordinal));
        foreach (var (key, shape) in expected)
            Assert.True(state[key].shape.SequenceEqual(shape), $"{key}: shape [{string.Join(", ", state[key].shape)}], expected [{string.Join(", ", shape)}]");

        // Every base key survives unchanged (a BertModel checkpoint still loads), and the adapters are exactly
        // the trainable parameters.
        Assert.All(baseKeys, k => Assert.True(state.ContainsKey(k), $"base key {k} is gone"));
        Assert.Equal(expected.Values.Sum(s => s.Aggregate(1L, (a, b) => a * b)), lora.CountParameters().Trainable);

        // The saved adapter: PEFT's keys for BertModel ("base_model.model." + the state-dict key), the same shapes,
        // and target_modules as written in the config.
        using var dir = new TempDirectory();
        var adapterDir = dir.File("adapter");
        lora.SaveAdapter(adapterDir);
        using (var file = SafetensorsFile.Read(Path.Combine(adapterDir, AdapterFiles.TensorsFileName)))
        {
            Assert.Equal(expected.Keys.Select(k => "base_model.model." + k).Order(StringComparer.Ordinal),
                file.Tensors.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, shape) in expected)
                Assert.Equal(shape, file.Tensors["base_model.model." + key].shape);
        }
        using var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapterDir, AdapterFiles.ConfigFileName)));
        Assert.Equal(["query", "value"], config.RootElement.GetProperty("target_modules").EnumerateArray().Select(e => e.GetString()).Order());
        Assert.Equal(r, config.RootElement.GetProperty("r").GetInt32());
        Assert.Equal(dora, config.RootElement.GetProperty("use_dora").GetBoolean());
    }

    [Fact]
    public void Key_and_dense_targets_name_their_own_projections_and_leave_the_others()
    {
        using var encoder = new BertEncoder(BertConfig.AllMiniLmL6V2);
        var lora = LoraModel.Wrap(encoder, new LoraConfig { R = 2, TargetModules = ["key", "attention.output.dense"] });
        var expected = Enumerable.Range(0, 6)
            .SelectMany(i => new[] { $"encoder.layer.{i}.attention.self.key", $"encoder.layer.{i}.attention.output.dense" });
        // "attention.output.dense" must not catch the feed-forward "output.dense" beside it.
        Assert.Equal(expected, lora.Layers.Keys);
    }
}
