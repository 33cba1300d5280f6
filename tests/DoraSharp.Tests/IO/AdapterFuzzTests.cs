using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using DoraSharp.IO;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Thousands of mutated adapter directories — config JSON edited structurally and as text, tensor files truncated,
/// bit-flipped and header-edited — loaded into a model: each load either succeeds with exactly the file's tensors,
/// or throws <see cref="AdapterFormatException"/> or <see cref="AdapterMismatchException"/> and leaves the model
/// exactly as it was. Nothing else escapes, nothing hangs.
/// </summary>
public sealed partial class AdapterFuzzTests(ITestOutputHelper output)
{
    private const int Mutants = 4000;
    private const int Seed = 20250101;
    private static readonly TimeSpan LoadLimit = TimeSpan.FromSeconds(10);

    private static readonly string[] ConfigFields =
    [
        "peft_type", "r", "lora_alpha", "lora_dropout", "target_modules", "exclude_modules", "use_dora", "use_rslora",
        "init_lora_weights", "bias", "fan_in_fan_out", "rank_pattern", "layers_to_transform", "modules_to_save",
        "use_qalora", "lora_bias", "velora_config", "task_type", "auto_mapping", "inference_mode", "a_new_field",
    ];

    private static readonly string[] ConfigValues =
    [
        "0", "1", "2", "3", "4", "8", "-1", "1.5", "4.0", "1e999", "2147483648", "0.5", "0.999", "1.0", "true", "false", "null",
        "\"LORA\"", "\"LOHA\"", "\"none\"", "\"all\"", "\"gaussian\"", "\"pissa\"", "\"eva\"", "\"all-linear\"", "\"(\"",
        "\"layers\\\\.[024]\"", "\"layers\\\\.(0|2)\"", "\".*\"", "\"(a+)+$\"", "[]", "{}", "{\"x\": 1}", "[\"layers.0\"]",
        "[\"layers.0\", \"layers.2\", \"layers.4\"]", "[\"0\", \"2\", \"4\"]", "[\"layers.2\"]", "[\"layers.1\"]", "[3]", "\"4\"",
        "[\"embed\", \"conv\", \"mix\", \"head\"]", "[\"embed\"]", "[\"conv\", \"mix\"]", "\"embed|conv\"",
    ];

    private static readonly string[] TextFragments = ["{", "}", "[", "]", "\"", ":", ",", "null", "\\", "\\ud800", "\u00e9", "\u0000", " ", "1e999", "-"];

    private static readonly string[] KeyModules = ["layers.0", "layers.1", "layers.2", "layers.4", "layers.5", "embed", "conv", "mix", "head"];

    private static readonly string[] KeyNames = ["lora_A.weight", "lora_B.weight", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector"];

    private static readonly string[] Dtypes = ["F64", "F32", "F16", "BF16", "I64", "I32", "U8", "BOOL", "F8_E4M3", "U16", "x"];

    private sealed record FuzzSeed(string Name, string Config, byte[] Tensors, nn.Module<Tensor, Tensor> Model, Tensor Input);

    [Fact]
    public async Task Mutated_adapters_load_exactly_or_are_refused_leaving_the_model_unchanged()
    {
        var random = new Random(Seed);
        using var temp = new TempDirectory();
        var seeds = Seeds(temp);
        string dir = temp.File("mutant");
        Directory.CreateDirectory(dir);

        var outcomes = new Dictionary<string, int>();
        TimeSpan slowest = TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < Mutants; i++)
        {
            FuzzSeed seed = seeds[random.Next(seeds.Count)];
            string config = seed.Config;
            byte[] tensors = seed.Tensors;
            int what = random.Next(3); // 0: config only, 1: tensors only, 2: both
            for (int e = 1 + random.Next(3); e > 0; e--)
            {
                if (what != 1) config = MutateConfig(config, random);
                if (what != 0) tensors = MutateTensors(tensors, random);
            }
            File.WriteAllText(Path.Combine(dir, "adapter_config.json"), config, new UTF8Encoding(false));
            File.WriteAllBytes(Path.Combine(dir, "adapter_model.safetensors"), tensors);

            using var snapshot = ModelSnapshot.Take(seed.Model, seed.Input);
            var one = Stopwatch.StartNew();
            (LoraModel? lora, Exception? error) result = default;
            try
            {
                result = await Task.Run(() => LoadOnce(seed.Model, dir)).WaitAsync(LoadLimit);
            }
            catch (TimeoutException)
            {
                Assert.Fail($"mutant #{i} of {seed.Name} was still loading after {LoadLimit}; config: {Excerpt(config)}");
            }
            if (one.Elapsed > slowest) slowest = one.Elapsed;

            string outcome;
            switch (result)
            {
                case ({ } lora, null):
                    AssertLoadedExactly(lora, dir, i);
                    // Put the model back as it was, for the next mutant: plain layers, trainable, in train mode.
                    lora.Unload();
                    foreach (var p in seed.Model.parameters()) p.requires_grad = true;
                    seed.Model.train();
                    outcome = "loaded";
                    break;
                case (null, AdapterFormatException):
                    outcome = "AdapterFormatException";
                    break;
                case (null, AdapterMismatchException):
                    outcome = "AdapterMismatchException";
                    break;
                default:
                    Assert.Fail($"mutant #{i} of {seed.Name}: {result.error!.GetType()} escaped: {result.error.Message}\nconfig: {Excerpt(config)}");
                    return;
            }
            snapshot.AssertUnchanged(seed.Model);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }

        output.WriteLine($"adapter fuzz: {Mutants} mutated adapter directories (seed {Seed}) in {clock.Elapsed.TotalSeconds:F1} s, slowest load {slowest.TotalMilliseconds:F0} ms: " +
            string.Join(", ", outcomes.OrderBy(o => o.Key).Select(o => $"{o.Value} {o.Key}")));
        // Every outcome must occur, or the mutations are not reaching that part of the loader.
        Assert.True(outcomes.GetValueOrDefault("loaded") > 0, "no mutant loaded");
        Assert.True(outcomes.GetValueOrDefault("AdapterFormatException") > 0, "no mutant was refused as malformed");
        Assert.True(outcomes.GetValueOrDefault("AdapterMismatchException") > 0, "no mutant was refused as not fitting");
    }

    private static (LoraModel?, Exception?) LoadOnce(nn.Module model, string dir)
    {
        try
        {
            return (LoraModel.LoadAdapter(model, dir), null);
        }
        catch (Exception e)
        {
            return (null, e);
        }
    }

    /// <summary>A successful load holds exactly the file's tensors, converted to the adapter's dtype.</summary>
    private static void AssertLoadedExactly(LoraModel lora, string dir, int index)
    {
        using SafetensorsContent file = SafetensorsFile.Read(Path.Combine(dir, "adapter_model.safetensors"));
        int expectedKeys = 0;
        foreach (var (path, layer) in lora.Layers)
        {
            foreach (var (name, parameter) in layer.AdapterParameters())
            {
                string key = $"base_model.model.{path}.{name}"; // the adapter's state-dict names are PEFT's suffixes
                Assert.True(file.Tensors.TryGetValue(key, out var source), $"mutant #{index}: loaded {key}, which the file does not hold");
                using var converted = source!.to(parameter.dtype);
                using var loaded = parameter.detach().contiguous();
                Assert.True(TensorTestData.Bytes(converted).AsSpan().SequenceEqual(TensorTestData.Bytes(loaded)), $"mutant #{index}: {key} differs from the file");
                expectedKeys++;
            }
        }
        Assert.Equal(file.Tensors.Count, expectedKeys);
    }

    private static List<FuzzSeed> Seeds(TempDirectory temp)
    {
        var seeds = new List<FuzzSeed>
        {
            new("peft fixture (DoRA, MLP 784-32-64-10)", AdapterFixture.ConfigText, File.ReadAllBytes(AdapterFixture.TensorsPath),
                new Mlp(), torch.rand(2, 784, generator: new Generator().manual_seed(1))),
        };
        // Small models so that most of the time goes into the loader, not into libtorch.
        (string Name, LoraConfig Config, Func<nn.Module<Tensor, Tensor>> Model, Tensor Input)[] own =
        [
            ("DoRA list targets", new LoraConfig { R = 2, LoraAlpha = 3.5, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] },
                () => new SequentialMlp([6, 5, 4, 3]), torch.rand(2, 6, generator: new Generator().manual_seed(2))),
            ("LoRA regex, rsLoRA, dropout", new LoraConfig { R = 3, LoraAlpha = 16, UseRsLora = true, LoraDropout = 0.1, TargetModulesRegex = "layers\\.[02]" },
                () => new SequentialMlp([6, 5, 4, 3]), torch.rand(2, 6, generator: new Generator().manual_seed(2))),
            ("DoRA Embedding, Conv2d and Linear", new LoraConfig { R = 2, LoraAlpha = 4, UseDora = true, TargetModules = ["embed", "conv", "mix", "head"] },
                () => new TokenConvNet(), torch.randint(0, 20, new long[] { 2, 8 }, dtype: ScalarType.Int64, generator: new Generator().manual_seed(2))),
        ];
        foreach ((string name, LoraConfig config, var build, Tensor input) in own)
        {
            torch.manual_seed(7);
            var model = build();
            var lora = LoraModel.Wrap(model, config);
            using (no_grad())
            {
                // Both factors nonzero: at init a Linear's or Conv2d's B is zero, and an Embedding's A.
                foreach (var layer in lora.Layers.Values)
                {
                    layer.LoraA.normal_(0, 0.5);
                    layer.LoraB.normal_(0, 0.5);
                }
            }
            string dir = temp.File(name.Replace(' ', '-').Replace(',', '-'));
            lora.SaveAdapter(dir);
            lora.Unload();
            foreach (var p in model.parameters()) p.requires_grad = true;
            seeds.Add(new(name, File.ReadAllText(Path.Combine(dir, "adapter_config.json")), File.ReadAllBytes(Path.Combine(dir, "adapter_model.safetensors")),
                model, input));
        }
        return seeds;
    }

    private static string MutateConfig(string text, Random random)
    {
        switch (random.Next(8))
        {
            case 0 or 1 or 2: // set a field to a value from the pool (structured: stays JSON)
            {
                string field = ConfigFields[random.Next(ConfigFields.Length)];
                string value = ConfigValues[random.Next(ConfigValues.Length)];
                return EditJson(text, config => config[field] = JsonNode.Parse(value));
            }
            case 3: // remove a field
            {
                int pick = random.Next(64);
                return EditJson(text, config => { if (config.Count > 0) config.Remove(config.ElementAt(pick % config.Count).Key); });
            }
            case 4: // truncate
                return text[..random.Next(text.Length + 1)];
            case 5: // replace a number token
                return FuzzText.ReplaceRandomMatch(text, NumberPattern(), ConfigValues[random.Next(12)], random);
            case 6: // insert a fragment
                return text.Insert(random.Next(text.Length + 1), TextFragments[random.Next(TextFragments.Length)]);
            default: // delete or duplicate a span
            {
                int start = random.Next(text.Length + 1);
                int length = random.Next(Math.Min(40, text.Length - start) + 1);
                return random.Next(2) == 0 ? text.Remove(start, length) : text.Insert(start, text.Substring(start, length));
            }
        }
    }

    /// <summary>
    /// Edits the text as a JSON object. Text earlier mutations left unparsable, or that JsonNode cannot edit (duplicate
    /// keys, lone surrogates), is kept as it is: the loader still gets it, through the text mutations.
    /// </summary>
    private static string EditJson(string text, Action<JsonObject> edit)
    {
        try
        {
            if (JsonNode.Parse(text) is not JsonObject config) return text;
            edit(config);
            return config.ToJsonString();
        }
        catch (Exception e) when (e is System.Text.Json.JsonException or InvalidOperationException or ArgumentException)
        {
            return text;
        }
    }

    private static byte[] MutateTensors(byte[] file, Random random)
    {
        switch (random.Next(9))
        {
            case 0: // truncate
                return file[..random.Next(file.Length + 1)];
            case 1: // flip bits in the data: still loads, with other (maybe NaN) values
            case 2:
            {
                byte[] copy = (byte[])file.Clone();
                for (int n = 1 + random.Next(8); n > 0 && copy.Length > 0; n--) copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
                return copy;
            }
            case 3: // overwrite the header length
            {
                if (file.Length < 8) return file;
                byte[] copy = (byte[])file.Clone();
                ulong current = BitConverter.ToUInt64(copy);
                ulong[] choices = [0, 2, current - 1, current + 1, (ulong)copy.Length, 100_000_001, ulong.MaxValue];
                BitConverter.GetBytes(choices[random.Next(choices.Length)]).CopyTo(copy, 0);
                return copy;
            }
            default: // edit the header text and fix up the length prefix
            {
                if (!FuzzText.TrySplit(file, out string header, out byte[] buffer)) return file;
                string edited = random.Next(5) switch
                {
                    0 => FuzzText.ReplaceRandomMatch(header, NumberPattern(), ConfigValues[random.Next(12)], random),
                    1 => FuzzText.ReplaceRandomMatch(header, DtypePattern(), $"\"dtype\":\"{Dtypes[random.Next(Dtypes.Length)]}\"", random),
                    2 => RenameKey(header, random),
                    3 => header.Insert(random.Next(header.Length + 1), TextFragments[random.Next(TextFragments.Length)]),
                    // Any module with any LoRA name, so that names of the wrong layer type (lora_A.weight on an Embedding) occur too.
                    _ => FuzzText.ReplaceRandomMatch(header, KeyPattern(), $"\"base_model.model.{KeyModules[random.Next(KeyModules.Length)]}.{KeyNames[random.Next(KeyNames.Length)]}\"", random),
                };
                return SafetensorsBytes.Build(Encoding.UTF8.GetBytes(edited), buffer);
            }
        }
    }

    private static string RenameKey(string text, Random random)
    {
        MatchCollection keys = KeyPattern().Matches(text);
        if (keys.Count < 2) return text;
        Match target = keys[random.Next(keys.Count)];
        return string.Concat(text.AsSpan(0, target.Index), keys[random.Next(keys.Count)].Value, text.AsSpan(target.Index + target.Length));
    }

    private static string Excerpt(string text) => text.Length <= 400 ? text : text[..400] + "…";

    [GeneratedRegex(@"-?\d+(\.\d+)?")]
    private static partial Regex NumberPattern();

    [GeneratedRegex("\"dtype\":\"[^\"]*\"")]
    private static partial Regex DtypePattern();

    [GeneratedRegex("\"[^\"]*\"(?=:)")]
    private static partial Regex KeyPattern();
}
