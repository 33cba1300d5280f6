using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Interoperability with PEFT both ways: adapters PEFT saved load here and reproduce PEFT's logits (merged and
/// unmerged), and adapters saved here are the files PEFT writes, key by key and byte by byte.
/// </summary>
public sealed class AdapterInteropTests : IDisposable
{
    private const string FixturesVariable = "DORA_PEFT_FIXTURES";
    private const string BuiltIn = "golden:peft_adapter_mlp";

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    /// <summary>
    /// The built-in fixture, plus one case per folder under DORA_PEFT_FIXTURES (the folder itself counts when it
    /// holds an adapter_config.json). A set variable that yields no folder gives a case that fails.
    /// </summary>
    public static TheoryData<string> Fixtures()
    {
        var data = new TheoryData<string> { BuiltIn };
        string? root = Environment.GetEnvironmentVariable(FixturesVariable);
        if (string.IsNullOrEmpty(root)) return data;
        if (!Directory.Exists(root))
        {
            data.Add($"{FixturesVariable}:(missing directory {root})");
            return data;
        }
        var folders = Directory.EnumerateDirectories(root).Order(StringComparer.Ordinal).ToList();
        if (File.Exists(Path.Combine(root, "adapter_config.json"))) folders.Insert(0, root);
        if (folders.Count == 0) data.Add($"{FixturesVariable}:(no fixture folders in {root})");
        foreach (string folder in folders) data.Add($"{FixturesVariable}:{Path.GetFileName(Path.TrimEndingDirectorySeparator(folder))}");
        return data;
    }

    private static string Resolve(string fixture)
    {
        if (fixture == BuiltIn) return AdapterFixture.Directory;
        string name = fixture[(FixturesVariable.Length + 1)..];
        Assert.False(name.StartsWith('('), $"{FixturesVariable} is set to '{Environment.GetEnvironmentVariable(FixturesVariable)}' but {name[1..^1]}; expected folders laid out like Golden/peft_adapter_mlp");
        string root = Environment.GetEnvironmentVariable(FixturesVariable)!;
        string direct = Path.GetFileName(Path.TrimEndingDirectorySeparator(root));
        string folder = Path.Combine(root, name);
        return Directory.Exists(folder) ? folder : name == direct ? root : throw new DirectoryNotFoundException(folder);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_logits_match_PEFT_unmerged_and_merged(string fixture)
    {
        string directory = Resolve(fixture);
        string basePath = Path.Combine(directory, "base_model.safetensors");
        var model = SequentialMlp.ShapedLike(basePath);
        BaseWeightsFile.Load(model, basePath);
        var io = SafetensorsReader.Read(Path.Combine(directory, "io.safetensors"));
        Tensor x = io["x"], expected = io["expected_logits"], baseLogits = io["base_logits"];
        (double rtol, double atolRel) = expected.dtype == ScalarType.Float64 ? (1e-9, 1e-11) : (1e-4, 2e-5);
        double atol = atolRel * Math.Max(1, expected.abs().max().to(ScalarType.Float64).item<double>());
        double baseAtol = atolRel * Math.Max(1, baseLogits.abs().max().to(ScalarType.Float64).item<double>());

        using (no_grad())
        {
            TensorAssert.Close(baseLogits, model.call(x), rtol, baseAtol, $"{fixture}: base model logits");

            var lora = LoraModel.LoadAdapter(model, directory);
            Assert.Equal(model.Widths.Length - 1, lora.Layers.Count);
            Assert.False(model.training, "an inference load (isTrainable: false) puts the model in eval mode, as PEFT does");
            TensorAssert.Close(expected, model.call(x), rtol, atol, $"{fixture}: adapted logits, unmerged");
            using (lora.DisableAdapters())
            {
                TensorAssert.Close(baseLogits, model.call(x), rtol, baseAtol, $"{fixture}: logits with the adapters disabled");
            }

            lora.Merge();
            TensorAssert.Close(expected, model.call(x), rtol, atol, $"{fixture}: adapted logits, merged");
            lora.Unmerge();
            TensorAssert.Close(expected, model.call(x), rtol, atol, $"{fixture}: adapted logits, unmerged again");
        }
    }

    [Fact]
    public void The_fixture_config_maps_to_PEFTs_options()
    {
        LoraConfig config = AdapterFiles.ReadConfig(AdapterFixture.Directory);
        Assert.Equal(4, config.R);
        Assert.Equal(8.0, config.LoraAlpha);
        Assert.Equal(2.0, config.Scaling);
        Assert.Equal(0.0, config.LoraDropout);
        Assert.True(config.UseDora);
        Assert.False(config.UseRsLora);
        Assert.Equal(["layers.0", "layers.2", "layers.4"], config.TargetModules!);
        Assert.Null(config.TargetModulesRegex);
        Assert.Null(config.ExcludeModules);
        Assert.Equal(LoraInit.Default, config.InitLoraWeights);
    }

    [Fact]
    public void Loaded_fixture_tensors_are_the_files_values_bit_for_bit()
    {
        var model = new Mlp();
        var lora = LoraModel.LoadAdapter(model, AdapterFixture.Directory);
        var file = SafetensorsReader.Read(AdapterFixture.TensorsPath);
        Assert.Equal(9, file.Count);
        foreach (string path in new[] { "layers.0", "layers.2", "layers.4" })
        {
            var layer = lora.Layers[path];
            TensorAssert.Equal(file[$"base_model.model.{path}.lora_A.weight"], layer.LoraA.detach(), $"{path} lora_A");
            TensorAssert.Equal(file[$"base_model.model.{path}.lora_B.weight"], layer.LoraB.detach(), $"{path} lora_B");
            TensorAssert.Equal(file[$"base_model.model.{path}.lora_magnitude_vector"], layer.Magnitude!.detach(), $"{path} magnitude");
            Assert.All(layer.AdapterParameters(), p => Assert.False(p.Parameter.requires_grad, $"{path}.{p.Name} is trainable after an inference load"));
        }
    }

    [Theory]
    [InlineData(ScalarType.BFloat16)]
    [InlineData(ScalarType.Float16)]
    [InlineData(ScalarType.Float64)]
    public void Adapter_tensors_of_another_float_dtype_are_converted_to_the_adapters_dtype(ScalarType fileType)
    {
        // PEFT's load_state_dict copies into the existing float32 adapter parameters whatever float dtype the file has.
        var peft = SafetensorsReader.Read(AdapterFixture.TensorsPath);
        var converted = peft.ToDictionary(kv => kv.Key, kv => kv.Value.to(fileType));
        string directory = _temp.File($"adapter-{fileType}");
        AdapterFixture.CopyAdapter(directory);
        SafetensorsFile.Write(Path.Combine(directory, "adapter_model.safetensors"), converted, new Dictionary<string, string> { ["format"] = "pt" });

        var lora = LoraModel.LoadAdapter(new Mlp(), directory);
        foreach (var (path, layer) in lora.Layers)
        {
            Assert.Equal(ScalarType.Float32, layer.LoraA.dtype);
            TensorAssert.Equal(converted[$"base_model.model.{path}.lora_A.weight"].to(ScalarType.Float32), layer.LoraA.detach(), $"{path} lora_A");
            TensorAssert.Equal(converted[$"base_model.model.{path}.lora_B.weight"].to(ScalarType.Float32), layer.LoraB.detach(), $"{path} lora_B");
            TensorAssert.Equal(converted[$"base_model.model.{path}.lora_magnitude_vector"].to(ScalarType.Float32), layer.Magnitude!.detach(), $"{path} magnitude");
        }
    }

    [Fact]
    public void Saved_adapter_follows_PEFTs_conventions_key_by_key()
    {
        torch.manual_seed(3);
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.4", "layers.0", "layers.2"] });
        using (no_grad())
        {
            foreach (var layer in lora.Layers.Values) layer.LoraB.normal_(0, 0.1);
        }
        string directory = _temp.File("saved");
        lora.SaveAdapter(directory);

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Directory.EnumerateFileSystemEntries(directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // Tensors: same keys, dtypes and shapes as the file PEFT wrote, and PEFT's metadata.
        using var savedHeader = Header(Path.Combine(directory, "adapter_model.safetensors"));
        using var peftHeader = Header(AdapterFixture.TensorsPath);
        Assert.Equal(Keys(peftHeader), Keys(savedHeader));
        foreach (string key in Keys(peftHeader))
        {
            var peftEntry = peftHeader.RootElement.GetProperty(key);
            var savedEntry = savedHeader.RootElement.GetProperty(key);
            Assert.Equal(peftEntry.GetProperty("dtype").GetString(), savedEntry.GetProperty("dtype").GetString());
            Assert.Equal(peftEntry.GetProperty("shape").GetRawText(), savedEntry.GetProperty("shape").GetRawText());
        }
        Assert.Equal("{\"format\":\"pt\"}", savedHeader.RootElement.GetProperty("__metadata__").GetRawText());
        var written = SafetensorsReader.Read(Path.Combine(directory, "adapter_model.safetensors"));
        foreach (var (path, layer) in lora.Layers)
        {
            TensorAssert.Equal(layer.LoraB.detach(), written[$"base_model.model.{path}.lora_B.weight"], $"{path} lora_B as written");
        }

        // Config: the same fields with the same JSON types as PEFT's; the same values but for the two that name the writer.
        string savedText = File.ReadAllText(Path.Combine(directory, "adapter_config.json"));
        using var saved = JsonDocument.Parse(savedText);
        using var peftConfig = JsonDocument.Parse(AdapterFixture.ConfigText);
        Assert.Equal(Fields(peftConfig), Fields(saved));
        foreach (var field in peftConfig.RootElement.EnumerateObject())
        {
            var mine = saved.RootElement.GetProperty(field.Name);
            Assert.True(field.Value.ValueKind == mine.ValueKind, $"field {field.Name}: {mine.ValueKind}, PEFT writes {field.Value.ValueKind}");
            if (field.Name is "auto_mapping" or "peft_version") continue;
            Assert.True(field.Value.GetRawText() == mine.GetRawText(), $"field {field.Name}: {mine.GetRawText()}, PEFT wrote {field.Value.GetRawText()}");
        }
        Assert.Equal("0.20.1.dev0+dorasharp", saved.RootElement.GetProperty("peft_version").GetString());
        Assert.Equal("{\"base_model_class\":\"Mlp\",\"parent_library\":\"DoraSharp.Tests\"}",
            System.Text.Json.Nodes.JsonObject.Create(saved.RootElement.GetProperty("auto_mapping"))!.ToJsonString());

        // Layout: json.dumps(indent=2, sort_keys=True) — the fixture's text with the two writer fields swapped.
        string expectedText = AdapterFixture.ConfigText
            .Replace("\"base_model_class\": \"MLP\"", "\"base_model_class\": \"Mlp\"")
            .Replace("\"parent_library\": \"__main__\"", "\"parent_library\": \"DoraSharp.Tests\"")
            .Replace("\"0.20.1.dev0@5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40\"", "\"0.20.1.dev0+dorasharp\"");
        Assert.Equal(expectedText, savedText);
    }

    [Fact]
    public void Resaving_the_PEFT_fixture_reproduces_its_files_byte_for_byte()
    {
        var model = new Mlp();
        var lora = LoraModel.LoadAdapter(model, AdapterFixture.Directory);
        string directory = _temp.File("resaved");
        lora.SaveAdapter(directory, new AdapterSaveOptions { AutoMapping = new PeftAutoMapping("MLP", "__main__") });

        Assert.Equal(File.ReadAllBytes(AdapterFixture.TensorsPath), File.ReadAllBytes(Path.Combine(directory, "adapter_model.safetensors")));
        string expected = AdapterFixture.ConfigText.Replace("\"0.20.1.dev0@5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40\"", "\"0.20.1.dev0+dorasharp\"");
        Assert.Equal(expected, File.ReadAllText(Path.Combine(directory, "adapter_config.json")));
    }

    [Fact]
    public void Save_options_fill_PEFTs_informational_fields()
    {
        var lora = LoraModel.Wrap(new Mlp(), new LoraConfig { R = 2, TargetModules = ["layers.0"] });
        string directory = _temp.File("named");
        lora.SaveAdapter(directory, new AdapterSaveOptions { BaseModelNameOrPath = "org/mlp-\u00e9", Revision = "v1" });
        string text = File.ReadAllText(Path.Combine(directory, "adapter_config.json"));
        Assert.Contains("\"base_model_name_or_path\": \"org/mlp-\\u00e9\",", text); // ensure_ascii, as Python writes it
        Assert.Contains("\"revision\": \"v1\",", text);
        Assert.Contains("\"use_dora\": false,", text);
        Assert.Contains("\"lora_alpha\": 8,", text);
        Assert.Contains("\"target_modules\": [\n    \"layers.0\"\n  ],", text);
    }

    private static JsonDocument Header(string path)
    {
        byte[] file = File.ReadAllBytes(path);
        int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        return JsonDocument.Parse(Encoding.UTF8.GetString(file, 8, length));
    }

    private static List<string> Keys(JsonDocument header) =>
        header.RootElement.EnumerateObject().Select(p => p.Name).Where(n => n != "__metadata__").Order(StringComparer.Ordinal).ToList();

    private static List<string> Fields(JsonDocument config) =>
        config.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal).ToList();
}
