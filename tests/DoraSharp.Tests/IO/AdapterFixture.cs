using System.Text;
using System.Text.Json.Nodes;

namespace DoraSharp.Tests.IO;

/// <summary>
/// The PEFT-written adapter fixture (Golden/peft_adapter_mlp, see Golden/README.md) and ways to make edited copies
/// of it, with System.Text.Json rather than the code under test.
/// </summary>
internal static class AdapterFixture
{
    /// <summary>The built-in fixture directory in the test output.</summary>
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Golden", "peft_adapter_mlp");

    public static string ConfigPath => Path.Combine(Directory, "adapter_config.json");
    public static string TensorsPath => Path.Combine(Directory, "adapter_model.safetensors");
    public static string BaseWeightsPath => Path.Combine(Directory, "base_model.safetensors");
    public static string IoPath => Path.Combine(Directory, "io.safetensors");

    /// <summary>Copies the adapter pair (not the base weights or io) into <paramref name="directory"/>, created if needed.</summary>
    public static string CopyAdapter(string directory)
    {
        System.IO.Directory.CreateDirectory(directory);
        File.Copy(ConfigPath, Path.Combine(directory, "adapter_config.json"), overwrite: true);
        File.Copy(TensorsPath, Path.Combine(directory, "adapter_model.safetensors"), overwrite: true);
        return directory;
    }

    /// <summary>Rewrites the adapter_config.json in <paramref name="directory"/> after <paramref name="edit"/>.</summary>
    public static void EditConfig(string directory, Action<JsonObject> edit)
    {
        string path = Path.Combine(directory, "adapter_config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString(), new UTF8Encoding(false));
    }

    /// <summary>Replaces the adapter_config.json in <paramref name="directory"/> by <paramref name="text"/>.</summary>
    public static void WriteConfig(string directory, string text) =>
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), text, new UTF8Encoding(false));

    /// <summary>The fixture's adapter_config.json text.</summary>
    public static string ConfigText => File.ReadAllText(ConfigPath);
}
