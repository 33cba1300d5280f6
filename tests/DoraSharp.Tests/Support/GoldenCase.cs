using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// One golden case computed by PyTorch running PEFT's own DoRA code (see Golden/README.md): the manifest
/// entry and its tensors.
/// </summary>
public sealed class GoldenCase
{
    private GoldenCase(string directory, JsonElement entry, double rtol)
    {
        Directory = directory;
        Entry = entry;
        Rtol = rtol;
    }

    public string Directory { get; }
    public JsonElement Entry { get; }
    public double Rtol { get; }
    public string Name => Entry.GetProperty("name").GetString()!;
    public string Layer => Entry.GetProperty("layer").GetString()!;
    public bool IsDora => Entry.GetProperty("variant").GetString() == "dora";
    public ScalarType DType => Entry.GetProperty("dtype").GetString() == "float64" ? ScalarType.Float64 : ScalarType.Float32;
    public int R => Entry.GetProperty("r").GetInt32();
    public double LoraAlpha => Entry.GetProperty("lora_alpha").GetDouble();
    public bool UseRsLora => Entry.GetProperty("use_rslora").GetBoolean();
    public double Scaling => Entry.GetProperty("scaling").GetDouble();
    public bool HasBias => Entry.GetProperty("has_bias").GetBoolean();
    public long InFeatures => Entry.GetProperty("in_features").GetInt64();
    public long OutFeatures => Entry.GetProperty("out_features").GetInt64();
    public double? DropoutP => Entry.GetProperty("dropout").ValueKind == JsonValueKind.Null ? null : Entry.GetProperty("dropout").GetProperty("p").GetDouble();
    public bool Init => Entry.GetProperty("init").GetBoolean();
    public bool EvalEqualsTrain => Entry.TryGetProperty("eval_equals_train", out var e) && e.GetBoolean();

    /// <summary>A (h, w) pair of the case's <c>conv</c> entry: kernel_size, stride, padding or dilation.</summary>
    public (long, long) Conv(string field)
    {
        var v = Entry.GetProperty("conv").GetProperty(field);
        return (v[0].GetInt64(), v[1].GetInt64());
    }

    /// <summary>The case's <c>conv.groups</c>.</summary>
    public long ConvGroups => Entry.GetProperty("conv").GetProperty("groups").GetInt64();

    /// <summary>The case's <c>embedding.padding_idx</c>, or null.</summary>
    public long? PaddingIdx => Entry.GetProperty("embedding").GetProperty("padding_idx") is { ValueKind: JsonValueKind.Number } p ? p.GetInt64() : null;

    /// <summary>The absolute tolerance the manifest gives for an expected tensor.</summary>
    public double Atol(string tensor) => Entry.GetProperty("atol").GetProperty(tensor).GetDouble();

    /// <summary>Reads every tensor of the case (the caller disposes them).</summary>
    public Dictionary<string, Tensor> LoadTensors()
        => SafetensorsReader.Read(Path.Combine(Directory, Entry.GetProperty("file").GetString()!));

    public override string ToString() => Name;

    /// <summary>The built-in golden directory copied from shared/golden into the test output.</summary>
    public static string BuiltInDirectory => Path.Combine(AppContext.BaseDirectory, "Golden");

    /// <summary>The cases of a directory's manifest.json.</summary>
    public static IReadOnlyList<GoldenCase> LoadManifest(string directory)
    {
        var path = Path.Combine(directory, "manifest.json");
        if (!File.Exists(path)) return Array.Empty<GoldenCase>();
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement.Clone();
        var tolerances = root.GetProperty("tolerances");
        return root.GetProperty("cases").EnumerateArray()
            .Select(c => new GoldenCase(directory, c,
                tolerances.GetProperty(c.GetProperty("dtype").GetString()!).GetProperty("rtol").GetDouble()))
            .ToList();
    }

    /// <summary>Built-in cases plus any in the directory named by DORA_GOLDEN_DIR, keyed "dir-tag:name".</summary>
    public static IEnumerable<(string Key, GoldenCase Case)> All()
    {
        foreach (var c in LoadManifest(BuiltInDirectory)) yield return ("golden:" + c.Name, c);
        var extra = Environment.GetEnvironmentVariable("DORA_GOLDEN_DIR");
        if (!string.IsNullOrEmpty(extra))
            foreach (var c in LoadManifest(extra)) yield return ("DORA_GOLDEN_DIR:" + c.Name, c);
    }

    public static GoldenCase ByKey(string key)
        => All().SingleOrDefault(c => c.Key == key).Case
           ?? throw new InvalidOperationException(
               $"Golden case '{key}' not found: DORA_GOLDEN_DIR='{Environment.GetEnvironmentVariable("DORA_GOLDEN_DIR")}' must be a folder with a manifest.json listing cases.");
}
