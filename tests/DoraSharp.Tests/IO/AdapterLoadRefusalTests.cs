using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Every kind of bad input to <see cref="LoraModel.LoadAdapter"/>: each is refused with the documented exception
/// type, a message naming the file and the offending key or field, and the model left exactly as it was. Each
/// case starts from the PEFT fixture and changes one thing.
/// </summary>
public sealed class AdapterLoadRefusalTests : IDisposable
{
    private const string Prefix = "base_model.model.";
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private string Adapter() => AdapterFixture.CopyAdapter(_temp.File($"adapter-{Guid.NewGuid():N}"));

    private static string ConfigOf(string dir) => Path.Combine(dir, "adapter_config.json");
    private static string TensorsOf(string dir) => Path.Combine(dir, "adapter_model.safetensors");

    /// <summary>Loads <paramref name="dir"/> into <paramref name="model"/> (default: the fixture's MLP) expecting a refusal.</summary>
    private static TException Refused<TException>(string dir, string filePath, string[] fragments, nn.Module<Tensor, Tensor>? model = null)
        where TException : Exception
    {
        model ??= new Mlp();
        using var input = torch.rand(2, InputWidth(model), generator: new Generator().manual_seed(5));
        using var snapshot = ModelSnapshot.Take(model, input);
        var e = Assert.Throws<TException>(() => LoraModel.LoadAdapter(model, dir));
        Assert.StartsWith(filePath + ": ", e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
        snapshot.AssertUnchanged(model);
        return e;
    }

    private static long InputWidth(nn.Module model) =>
        model.named_parameters().First(p => p.name.EndsWith("weight")).parameter.shape[1];

    private static AdapterFormatException FormatRefused(string dir, string filePath, params string[] fragments)
    {
        var e = Refused<AdapterFormatException>(dir, filePath, fragments);
        Assert.Equal(filePath, e.FilePath);
        return e;
    }

    private static AdapterMismatchException MismatchRefused(string dir, string filePath, string? key, string[] fragments, nn.Module<Tensor, Tensor>? model = null)
    {
        var e = Refused<AdapterMismatchException>(dir, filePath, fragments, model);
        Assert.Equal(filePath, e.FilePath);
        Assert.Equal(key, e.Key);
        return e;
    }

    // ---- missing files -------------------------------------------------------------------------------------

    [Fact]
    public void A_missing_directory_is_refused()
    {
        string dir = _temp.File("nowhere");
        FormatRefused(dir, dir, "does not exist");
    }

    [Fact]
    public void A_missing_config_is_refused()
    {
        string dir = Adapter();
        File.Delete(ConfigOf(dir));
        FormatRefused(dir, ConfigOf(dir), "does not exist", "adapter_config.json");
    }

    [Fact]
    public void A_missing_tensor_file_is_refused_and_a_pickle_is_not_read_instead()
    {
        string dir = Adapter();
        File.Delete(TensorsOf(dir));
        FormatRefused(dir, TensorsOf(dir), "does not exist");
        File.WriteAllBytes(Path.Combine(dir, "adapter_model.bin"), [0x80, 0x02]);
        FormatRefused(dir, TensorsOf(dir), "does not exist", "adapter_model.bin", "pickle");
    }

    // ---- config ----------------------------------------------------------------------------------------------

    [Theory]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 4,", "not valid JSON")]
    [InlineData("", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object")]
    [InlineData("{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8, \"target_modules\": [\"layers.0\"]}", "'r' appears more than once")]
    public void Malformed_config_JSON_is_refused(string text, string fragment)
    {
        string dir = Adapter();
        AdapterFixture.WriteConfig(dir, text);
        FormatRefused(dir, ConfigOf(dir), fragment);
    }

    [Fact]
    public void Config_bytes_that_are_not_UTF8_are_refused()
    {
        string dir = Adapter();
        File.WriteAllBytes(ConfigOf(dir), [(byte)'{', 0xff, (byte)'}']);
        FormatRefused(dir, ConfigOf(dir), "not valid UTF-8");
    }

    [Theory]
    [InlineData("\"LOHA\"", "field \"peft_type\" is 'LOHA'")]
    [InlineData("\"lora\"", "field \"peft_type\" is 'lora'")]
    [InlineData("null", "field \"peft_type\" is null; expected")]
    public void An_unknown_peft_type_is_refused(string value, string fragment)
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["peft_type"] = JsonNode.Parse(value));
        FormatRefused(dir, ConfigOf(dir), fragment, "\"LORA\"");
    }

    [Fact]
    public void A_config_without_peft_type_is_refused()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c.Remove("peft_type"));
        FormatRefused(dir, ConfigOf(dir), "field \"peft_type\" is missing");
    }

    [Theory]
    [InlineData("r", "0", "field \"r\" is 0; r must be an integer >= 1")]
    [InlineData("r", "-4", "field \"r\" is -4; r must be an integer >= 1")]
    [InlineData("r", "4.5", "field \"r\" is 4.5, which is not an integer")]
    [InlineData("r", "4.0", "field \"r\" is 4.0, which is not an integer")]
    [InlineData("r", "\"4\"", "field \"r\" is the string '\"4\"'")]
    [InlineData("r", "true", "field \"r\" is the boolean true")]
    [InlineData("r", "99999999999", "field \"r\" is 99999999999; r must be at most")]
    [InlineData("lora_alpha", "0", "field \"lora_alpha\" is 0; lora_alpha must be a number > 0")]
    [InlineData("lora_alpha", "-8", "field \"lora_alpha\" is -8")]
    [InlineData("lora_alpha", "1e999", "field \"lora_alpha\" is 1e999, which is not a finite number")]
    [InlineData("lora_alpha", "1e30", "field \"lora_alpha\" is 1E+30; with r = 4 the scaling s = lora_alpha / r = 2.5E+29, but s must be in [1E-12, 1000000]")]
    [InlineData("lora_alpha", "4000004", "field \"lora_alpha\" is 4000004; with r = 4 the scaling s = lora_alpha / r = 1000001")]
    [InlineData("lora_alpha", "1e-300", "field \"lora_alpha\" is 1E-300; with r = 4 the scaling")]
    [InlineData("lora_dropout", "1.0", "field \"lora_dropout\" is 1.0; lora_dropout must be in [0, 1)")]
    [InlineData("lora_dropout", "-0.1", "field \"lora_dropout\" is -0.1")]
    [InlineData("use_dora", "\"true\"", "field \"use_dora\" is the string")]
    [InlineData("use_rslora", "1", "field \"use_rslora\" is the number 1; expected true or false")]
    [InlineData("target_modules", "null", "field \"target_modules\" is missing or null")]
    [InlineData("target_modules", "[]", "field \"target_modules\" is an empty list")]
    [InlineData("target_modules", "[\"layers.0\", 3]", "field \"target_modules[1]\" is the number 3")]
    [InlineData("target_modules", "[\"layers.0\", \" \"]", "field \"target_modules[1]\" is empty")]
    [InlineData("target_modules", "\"all-linear\"", "field \"target_modules\" is \"all-linear\"")]
    [InlineData("target_modules", "\"layers\\\\.(0\"", "not a valid Python regular expression or has no faithful .NET translation (missing ), unterminated subpattern at position 8)")]
    [InlineData("target_modules", "\"layers\\\\.\\\\p{N}\"", "(bad escape \\p at position 8)")]
    [InlineData("target_modules", "\"(?P<i>layers)\\\\.[^\\\\W\\\\d]\"", "the negated class escape \\W inside a set with other items has no faithful .NET form")]
    [InlineData("target_modules", "{\"a\": 1}", "field \"target_modules\" is an object; expected a list of module names or one regular expression")]
    [InlineData("exclude_modules", "\"layers\\\\.2\"", "field \"exclude_modules\" is a regular expression")]
    [InlineData("init_lora_weights", "\"pissa\"", "field \"init_lora_weights\" is 'pissa': that scheme rewrites the base weights")]
    [InlineData("init_lora_weights", "\"pissa_niter_4\"", "rewrites the base weights")]
    [InlineData("init_lora_weights", "\"olora\"", "rewrites the base weights")]
    [InlineData("init_lora_weights", "\"corda\"", "rewrites the base weights")]
    [InlineData("init_lora_weights", "\"loftq\"", "rewrites the base weights")]
    [InlineData("init_lora_weights", "\"lora_ga\"", "rewrites the base weights")]
    [InlineData("init_lora_weights", "\"mica\"", "MiCA")]
    [InlineData("init_lora_weights", "\"xavier\"", "an init scheme DoraSharp does not know")]
    [InlineData("init_lora_weights", "0", "field \"init_lora_weights\" is the number 0")]
    public void Invalid_config_values_are_refused_naming_the_field(string field, string json, string fragment)
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c[field] = JsonNode.Parse(json));
        FormatRefused(dir, ConfigOf(dir), fragment);
    }

    [Theory]
    [InlineData("fan_in_fan_out", "true", "(GPT-2's Conv1D)")]
    [InlineData("bias", "\"all\"", "field \"bias\" is 'all'")]
    [InlineData("bias", "\"lora_only\"", "field \"bias\" is 'lora_only'")]
    [InlineData("lora_bias", "true", "field \"lora_bias\" is true")]
    [InlineData("use_qalora", "true", "field \"use_qalora\" is true")]
    [InlineData("rank_pattern", "{\"layers.0\": 8}", "field \"rank_pattern\"")]
    [InlineData("alpha_pattern", "{\"layers.0\": 16}", "field \"alpha_pattern\"")]
    [InlineData("layers_to_transform", "[0]", "field \"layers_to_transform\"")]
    [InlineData("layers_to_transform", "[]", "field \"layers_to_transform\"")]
    [InlineData("layers_to_transform", "0", "field \"layers_to_transform\"")]
    [InlineData("layers_pattern", "\"layers\"", "field \"layers_pattern\"")]
    [InlineData("target_parameters", "[\"layers.0.weight\"]", "field \"target_parameters\"")]
    [InlineData("layer_replication", "[[0, 1]]", "field \"layer_replication\"")]
    [InlineData("megatron_config", "{\"tp\": 2}", "field \"megatron_config\"")]
    [InlineData("trainable_token_indices", "[1, 2]", "field \"trainable_token_indices\"")]
    [InlineData("alora_invocation_tokens", "[]", "field \"alora_invocation_tokens\"")]
    [InlineData("use_bdlora", "{}", "field \"use_bdlora\"")]
    [InlineData("arrow_config", "{}", "field \"arrow_config\"")]
    [InlineData("kasa_config", "{}", "field \"kasa_config\"")]
    [InlineData("monteclora_config", "{}", "field \"monteclora_config\"")]
    [InlineData("velora_config", "{}", "field \"velora_config\"")]
    public void PEFT_options_that_change_the_math_are_refused_naming_the_field(string field, string json, string fragment)
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c[field] = JsonNode.Parse(json));
        var e = FormatRefused(dir, ConfigOf(dir), fragment);
        Assert.Contains(field, e.Message);
    }

    [Fact]
    public void A_config_listing_an_adapted_module_in_modules_to_save_is_refused_naming_it()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["modules_to_save"] = JsonNode.Parse("[\"layers.4\"]"));
        MismatchRefused(dir, TensorsOf(dir), "base_model.model.layers.4.lora_A.weight",
            ["unexpected key 'base_model.model.layers.4.lora_A.weight': module 'layers.4' is listed in adapter_config.json's modules_to_save, which is trained in full and never carries a LoRA adapter"]);
    }

    [Theory]
    [InlineData("init_lora_weights", "false")]
    [InlineData("init_lora_weights", "\"gaussian\"")]
    [InlineData("init_lora_weights", "\"orthogonal\"")]
    [InlineData("init_lora_weights", "\"eva\"")]
    [InlineData("rank_pattern", "null")]
    [InlineData("modules_to_save", "[]")]
    [InlineData("megatron_config", "{}")]
    [InlineData("exclude_modules", "[]")]
    [InlineData("a_field_from_a_newer_peft", "{\"anything\": [1, 2]}")]
    [InlineData("loftq_config", "{\"loftq_bits\": 4}")]
    [InlineData("task_type", "\"CAUSAL_LM\"")]
    public void Values_that_leave_the_math_unchanged_load(string field, string json)
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c[field] = JsonNode.Parse(json));
        var lora = LoraModel.LoadAdapter(new Mlp(), dir);
        Assert.Equal(3, lora.Layers.Count);
    }

    [Theory]
    [InlineData("(?x)layers\\.[024] # all linear")]            // issue 13, defect 6: the comment swallowed the wrapper's ')'
    [InlineData("(?P<block>layers)\\.(?:0|2|4)\\Z")]          // Python's named group and \Z
    [InlineData("layers\\.[0-4]{,1}(?<=[024])")]               // {,1}: Python's 0-to-1
    public void Python_regexes_load_selecting_the_modules_Python_selects(string pattern)
    {
        // re.fullmatch(pattern, key) selects layers.0, layers.2 and layers.4 of the fixture's MLP in Python.
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = pattern);
        var lora = LoraModel.LoadAdapter(new Mlp(), dir);
        Assert.Equal(["layers.0", "layers.2", "layers.4"], lora.Layers.Keys);
    }

    [Fact]
    public void Target_modules_absent_from_the_model_are_refused()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = new JsonArray("fc1", "fc2"));
        MismatchRefused(dir, ConfigOf(dir), "target_modules",
            ["field \"target_modules\" (['fc1', 'fc2']) selects no Linear, Embedding or Conv2d module", "layers.0, layers.2, layers.4"]);
    }

    [Fact]
    public void An_adapter_for_a_different_architecture_is_refused_by_its_targets()
    {
        string dir = Adapter();
        MismatchRefused(dir, ConfigOf(dir), "target_modules", ["selects no Linear, Embedding or Conv2d module", "stem.0"], model: new ContainerNet());
    }

    [Fact]
    public void Target_modules_naming_a_non_Linear_module_are_refused_after_Wrap_is_undone()
    {
        // The layout check passes (layers.0/2/4 have all their tensors); Wrap then refuses layers.1, a ReLU.
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = new JsonArray("layers.0", "layers.1", "layers.2", "layers.4"));
        MismatchRefused(dir, ConfigOf(dir), "target_modules", ["layers.1", "ReLU"]);
    }

    [Fact]
    public void A_model_that_already_has_adapters_is_refused()
    {
        var model = new Mlp();
        LoraModel.Wrap(model, new LoraConfig { R = 2, TargetModules = ["layers.0"] });
        using var snapshot = ModelSnapshot.Take(model);
        var e = Assert.Throws<InvalidOperationException>(() => LoraModel.LoadAdapter(model, AdapterFixture.Directory));
        Assert.Contains("already has an adapter at 'layers.0'", e.Message);
        Assert.Contains("LoadAdapterWeights", e.Message);
        snapshot.AssertUnchanged(model);
    }

    // ---- safetensors structure (SafetensorsFile's checks, through LoadAdapter) ---------------------------------

    private static byte[] FixtureBytes => File.ReadAllBytes(AdapterFixture.TensorsPath);

    private static (JsonObject Header, byte[] Buffer) Split(byte[] file)
    {
        int length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        return (JsonNode.Parse(Encoding.UTF8.GetString(file, 8, length))!.AsObject(), file[(8 + length)..]);
    }

    private static byte[] WithHeader(Action<JsonObject> edit)
    {
        (JsonObject header, byte[] buffer) = Split(FixtureBytes);
        edit(header);
        return SafetensorsBytes.Build(header.ToJsonString(), buffer);
    }

    private string AdapterWithTensorFile(byte[] bytes)
    {
        string dir = Adapter();
        File.WriteAllBytes(TensorsOf(dir), bytes);
        return dir;
    }

    [Fact]
    public void A_truncated_tensor_file_is_refused()
    {
        string dir = AdapterWithTensorFile(FixtureBytes[..^100]);
        FormatRefused(dir, TensorsOf(dir), "reach past the end of the");
        dir = AdapterWithTensorFile(FixtureBytes[..5]);
        FormatRefused(dir, TensorsOf(dir), "the file is 5 bytes long");
    }

    [Fact]
    public void A_header_length_beyond_the_file_is_refused()
    {
        byte[] file = FixtureBytes;
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)file.Length);
        string dir = AdapterWithTensorFile(file);
        FormatRefused(dir, TensorsOf(dir), $"the header length field says {file.Length} bytes, but only {file.Length - 8} bytes follow it");
    }

    [Fact]
    public void Invalid_header_JSON_is_refused()
    {
        (JsonObject header, byte[] buffer) = Split(FixtureBytes);
        string text = header.ToJsonString();
        string dir = AdapterWithTensorFile(SafetensorsBytes.Build(text[..^1] + ",}", buffer));
        FormatRefused(dir, TensorsOf(dir), "the header is not valid JSON");
    }

    [Fact]
    public void Offsets_outside_the_data_are_refused()
    {
        const string Key = Prefix + "layers.4.lora_magnitude_vector";
        string dir = AdapterWithTensorFile(WithHeader(h =>
        {
            var offsets = h[Key]!["data_offsets"]!.AsArray();
            long end = offsets[1]!.GetValue<long>();
            h[Key]!["data_offsets"] = new JsonArray(end, end + 40);
        }));
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}'", "reach past the end of the");
    }

    [Fact]
    public void Overlapping_tensors_are_refused()
    {
        const string Key = Prefix + "layers.0.lora_B.weight";
        string dir = AdapterWithTensorFile(WithHeader(h => h[Key]!["data_offsets"] = new JsonArray(12000, 12512)));
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}'", "overlaps tensor '" + Prefix + "layers.0.lora_A.weight'");
    }

    [Fact]
    public void An_unsupported_dtype_is_refused()
    {
        const string Key = Prefix + "layers.2.lora_A.weight";
        string dir = AdapterWithTensorFile(WithHeader(h => h[Key]!["dtype"] = "F8_E4M3"));
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}'", "dtype 'F8_E4M3' is not supported");
    }

    [Fact]
    public void A_shape_that_disagrees_with_the_byte_count_is_refused()
    {
        const string Key = Prefix + "layers.0.lora_A.weight";
        string dir = AdapterWithTensorFile(WithHeader(h => h[Key]!["shape"] = new JsonArray(4, 783)));
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}'", "span 12544 bytes, but dtype F32 and shape [4, 783] need 12528 bytes");
    }

    [Fact]
    public void A_non_float_dtype_is_refused()
    {
        // I32 has F32's size, so the file is well-formed; the adapter is not.
        const string Key = Prefix + "layers.4.lora_B.weight";
        string dir = AdapterWithTensorFile(WithHeader(h => h[Key]!["dtype"] = "I32"));
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}' has dtype I32", "must be floating point");
    }

    // ---- keys and shapes against the model ------------------------------------------------------------------

    private string AdapterWithTensors(Action<Dictionary<string, Tensor>> edit)
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.TensorsPath);
        edit(tensors);
        string dir = Adapter();
        SafetensorsFile.Write(TensorsOf(dir), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }

    [Fact]
    public void A_missing_key_is_refused()
    {
        const string Key = Prefix + "layers.2.lora_B.weight";
        string dir = AdapterWithTensors(t => t.Remove(Key));
        MismatchRefused(dir, TensorsOf(dir), Key, [$"missing key '{Key}'", "targets Linear module 'layers.2'"]);
    }

    [Fact]
    public void A_missing_magnitude_is_refused_for_DoRA()
    {
        const string Key = Prefix + "layers.0.lora_magnitude_vector";
        string dir = AdapterWithTensors(t => t.Remove(Key));
        MismatchRefused(dir, TensorsOf(dir), Key, [$"missing key '{Key}'"]);
    }

    [Fact]
    public void An_unexpected_key_is_refused()
    {
        const string Key = Prefix + "layers.0.bias";
        string dir = AdapterWithTensors(t => t[Key] = torch.zeros(32));
        MismatchRefused(dir, TensorsOf(dir), Key, [$"unexpected key '{Key}'", "not a LoRA tensor"]);
    }

    [Fact]
    public void A_key_without_PEFTs_prefix_is_refused()
    {
        const string Key = "layers.0.lora_A.weight";
        string dir = AdapterWithTensors(t =>
        {
            t[Key] = t[Prefix + Key];
            t.Remove(Prefix + Key);
        });
        MismatchRefused(dir, TensorsOf(dir), Key, [$"unexpected key '{Key}'", "start with 'base_model.model.'"]);
    }

    [Fact]
    public void A_magnitude_in_a_LoRA_adapter_is_refused()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["use_dora"] = false);
        const string Key = Prefix + "layers.0.lora_magnitude_vector";
        MismatchRefused(dir, TensorsOf(dir), Key, [$"unexpected key '{Key}'", "\"use_dora\": false", "(3 unexpected keys in all"]);
    }

    [Fact]
    public void A_key_for_a_module_the_model_lacks_is_refused()
    {
        // A 784-32-10 MLP has layers.0 and layers.2 but no layers.4: the adapter is for another architecture.
        const string Key = Prefix + "layers.4.lora_A.weight";
        string dir = Adapter();
        MismatchRefused(dir, TensorsOf(dir), Key, [$"unexpected key '{Key}'", "the model has no module 'layers.4'", "different architecture"],
            model: new SequentialMlp([784, 32, 10]));
    }

    [Fact]
    public void A_key_for_a_module_the_config_does_not_target_is_refused()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["exclude_modules"] = new JsonArray("layers.2"));
        const string Key = Prefix + "layers.2.lora_A.weight";
        MismatchRefused(dir, TensorsOf(dir), Key, [$"unexpected key '{Key}'", "not selected by adapter_config.json's target_modules/exclude_modules"]);
    }

    [Fact]
    public void Tensor_shapes_that_disagree_with_r_are_refused()
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["r"] = 2);
        const string Key = Prefix + "layers.0.lora_A.weight";
        var e = FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}' has shape [4, 784], which disagrees with \"r\": 2", "has shape [2, 784]");
        Assert.Contains("adapter_config.json", e.Message);
    }

    [Fact]
    public void Tensor_shapes_that_disagree_with_the_layer_are_refused()
    {
        // Same module names, but layers.0 is 784 → 16: the adapter was trained for a layer of another size.
        const string Key = Prefix + "layers.0.lora_B.weight";
        string dir = Adapter();
        MismatchRefused(dir, TensorsOf(dir), Key,
            [$"tensor '{Key}' has shape [32, 4]", "module 'layers.0' (784 → 16) has shape [16, 4]", "layer of another size"],
            model: new Mlp(784, 16, 64, 10));
    }

    [Fact]
    public void A_huge_alpha_with_rsLoRA_is_refused_whatever_the_field_order()
    {
        // use_rslora comes after lora_alpha in the file; the scaling is checked once all fields are read.
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c =>
        {
            c.Remove("use_rslora");
            c.Remove("lora_alpha");
            c["lora_alpha"] = 1e30;
            c["use_rslora"] = true;
        });
        FormatRefused(dir, ConfigOf(dir), "field \"lora_alpha\" is 1E+30; with r = 4 and use_rslora the scaling s = lora_alpha / sqrt(r) = 5E+29");
    }

    [Theory]
    [InlineData("layers.0.lora_A.weight", float.NaN, "holds at flat index 5 the value NaN; adapter weights must be finite")]
    [InlineData("layers.2.lora_B.weight", float.PositiveInfinity, "holds at flat index 5 the value Infinity")]
    [InlineData("layers.4.lora_magnitude_vector", float.NegativeInfinity, "holds at flat index 5 the value -Infinity")]
    public void Non_finite_adapter_values_are_refused(string name, float value, string fragment)
    {
        string key = Prefix + name;
        string dir = AdapterWithTensors(t =>
        {
            var edited = t[key].clone();
            edited.view(-1)[5] = torch.tensor(value);
            t[key] = edited;
        });
        FormatRefused(dir, TensorsOf(dir), $"tensor '{key}'", fragment);
    }

    [Fact]
    public void A_float64_value_beyond_float32s_range_is_refused_for_a_float32_adapter()
    {
        // Finite in the file (F64), infinite once converted to the float32 adapter of a float32 base.
        const string Key = Prefix + "layers.2.lora_A.weight";
        string dir = AdapterWithTensors(t =>
        {
            var edited = t[Key].to(ScalarType.Float64);
            edited.view(-1)[7] = torch.tensor(1e300);
            t[Key] = edited;
        });
        FormatRefused(dir, TensorsOf(dir), $"tensor '{Key}' holds at flat index 7 the value 1E+300, which overflows the adapter's dtype Float32");
    }

    [Fact]
    public void A_tensor_of_the_wrong_rank_is_refused()
    {
        const string Key = Prefix + "layers.4.lora_magnitude_vector";
        string dir = AdapterWithTensors(t => t[Key] = t[Key].reshape(1, 10, 1, 1));
        MismatchRefused(dir, TensorsOf(dir), Key, [$"tensor '{Key}' has shape [1, 10, 1, 1]", "has shape [10]"]);
    }

    [Fact]
    public void A_config_claiming_a_huge_rank_is_refused_before_anything_is_allocated()
    {
        // r = 2^31 - 1 would mean lora_A of 784 × 2^31 floats (6.7 TB) for layers.0 alone. The tensors in the
        // file (r = 4) refute it before Wrap allocates anything.
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c["r"] = int.MaxValue);
        var clock = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        FormatRefused(dir, TensorsOf(dir), $"which disagrees with \"r\": {int.MaxValue}");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 20_000_000, "the refusal allocated more than 20 MB");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the refusal took {clock.Elapsed}");
    }

    // ---- LoadAdapterWeights into an existing LoraModel --------------------------------------------------------

    [Fact]
    public void LoadAdapterWeights_refuses_an_adapter_with_other_options_and_changes_nothing()
    {
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 16, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        using var snapshot = ModelSnapshot.Take(model);
        var e = Assert.Throws<AdapterMismatchException>(() => lora.LoadAdapterWeights(AdapterFixture.Directory));
        Assert.Equal("lora_alpha", e.Key);
        Assert.Contains("field \"lora_alpha\" is 8, but the LoraModel's adapters have 16", e.Message);
        snapshot.AssertUnchanged(model);
    }

    [Fact]
    public void LoadAdapterWeights_refuses_an_adapter_for_other_modules_and_changes_nothing()
    {
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.0", "layers.2"] });
        using var snapshot = ModelSnapshot.Take(model);
        var e = Assert.Throws<AdapterMismatchException>(() => lora.LoadAdapterWeights(AdapterFixture.Directory));
        Assert.Equal("target_modules", e.Key);
        Assert.Contains("selects [layers.0, layers.2, layers.4] in this model, but the LoraModel's adapter adapts [layers.0, layers.2]", e.Message);
        snapshot.AssertUnchanged(model);
    }

    /// <summary>Config edits that make the fixture an adapter LoadAdapter refuses (issue 13, defect 9).</summary>
    public static TheoryData<string, string> ConfigsLoadAdapterRefuses() => new()
    {
        { "target_modules", "[\"fc1\", \"fc2\"]" },                          // selects nothing in this model
        { "target_modules", "[\"layers.0\", \"layers.1\", \"layers.2\", \"layers.4\"]" }, // layers.1 is a ReLU
        { "exclude_modules", "[\"layers.2\"]" },                                // the file's layers.2 tensors are then unexpected
        { "modules_to_save", "[\"head\"]" },                                    // no such module
        { "modules_to_save", "[\"layers.4\"]" },                                // an adapted module trained in full
        { "target_modules", "\"layers\\\\.[01]\"" },                        // a regex selecting other modules
    };

    [Theory]
    [MemberData(nameof(ConfigsLoadAdapterRefuses))]
    public void LoadAdapterWeights_refuses_what_LoadAdapter_refuses_with_the_same_message(string field, string json)
    {
        string dir = Adapter();
        AdapterFixture.EditConfig(dir, c => c[field] = JsonNode.Parse(json));
        var fromLoad = Assert.ThrowsAny<IOException>(() => LoraModel.LoadAdapter(new Mlp(), dir));

        // The fixture's options on all three Linear layers: before this check, LoadAdapterWeights accepted every one of
        // these files, because it compared only r, lora_alpha, use_dora and use_rslora and ignored the file's modules.
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        using var snapshot = ModelSnapshot.Take(model);
        var fromWeights = Assert.ThrowsAny<IOException>(() => lora.LoadAdapterWeights(dir));
        Assert.Equal(fromLoad.GetType(), fromWeights.GetType());
        Assert.Equal(fromLoad.Message, fromWeights.Message);
        Assert.Equal((fromLoad as AdapterMismatchException)?.Key, (fromWeights as AdapterMismatchException)?.Key);
        snapshot.AssertUnchanged(model);
    }

    [Fact]
    public void LoadAdapterWeights_refuses_a_consistent_file_for_other_modules_naming_both_module_lists()
    {
        // A file LoadAdapter accepts (it targets layers.0 and layers.2 and holds exactly their tensors), loaded into
        // adapters on all three layers: refused by its config, not only by a missing key.
        string dir = AdapterWithTensors(t =>
        {
            foreach (string key in t.Keys.Where(k => k.Contains("layers.4.")).ToList()) t.Remove(key);
        });
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = new JsonArray("layers.0", "layers.2"));
        Assert.Equal(2, LoraModel.LoadAdapter(new Mlp(), dir).Layers.Count);

        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        using var snapshot = ModelSnapshot.Take(model);
        var e = Assert.Throws<AdapterMismatchException>(() => lora.LoadAdapterWeights(dir));
        Assert.Equal(ConfigOf(dir), e.FilePath);
        Assert.Equal("target_modules", e.Key);
        Assert.Contains("selects [layers.0, layers.2] in this model, but the LoraModel's adapter adapts [layers.0, layers.2, layers.4]", e.Message);
        snapshot.AssertUnchanged(model);
    }

    [Fact]
    public void LoadAdapterWeights_loads_the_values_into_matching_adapters()
    {
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, LoraDropout = 0.1, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        lora.LoadAdapterWeights(AdapterFixture.Directory);
        var file = SafetensorsReader.Read(AdapterFixture.TensorsPath);
        foreach (var (path, layer) in lora.Layers)
        {
            TensorAssert.Equal(file[$"{Prefix}{path}.lora_A.weight"], layer.LoraA.detach(), $"{path} lora_A");
            TensorAssert.Equal(file[$"{Prefix}{path}.lora_B.weight"], layer.LoraB.detach(), $"{path} lora_B");
            TensorAssert.Equal(file[$"{Prefix}{path}.lora_magnitude_vector"], layer.Magnitude!.detach(), $"{path} magnitude");
            Assert.True(layer.LoraA.requires_grad, "LoadAdapterWeights keeps the adapters trainable");
        }
    }
}
