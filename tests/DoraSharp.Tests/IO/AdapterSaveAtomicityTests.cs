using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Saving replaces the adapter directory as a whole: on any failure the previous pair is left byte for byte and
/// nothing of ours is left behind; on success both files change together.
/// </summary>
public sealed class AdapterSaveAtomicityTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static LoraModel Adapted(long seed, double alpha = 8)
    {
        torch.manual_seed(seed);
        var lora = LoraModel.Wrap(new Mlp(), new LoraConfig { R = 4, LoraAlpha = alpha, UseDora = true, TargetModules = ["layers.0", "layers.2", "layers.4"] });
        using (no_grad())
        {
            foreach (var layer in lora.Layers.Values) layer.LoraB.normal_(0, 0.1);
        }
        return lora;
    }

    private static Dictionary<string, byte[]> Files(string directory) =>
        Directory.EnumerateFileSystemEntries(directory).ToDictionary(p => Path.GetFileName(p)!, File.ReadAllBytes);

    private static void AssertSameFiles(Dictionary<string, byte[]> expected, string directory)
    {
        var actual = Files(directory);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, bytes) in expected) Assert.True(bytes.AsSpan().SequenceEqual(actual[name]), $"{name} changed");
    }

    [Fact]
    public void Save_creates_the_directory_and_its_parents_and_leaves_nothing_else()
    {
        string directory = Path.Combine(_temp.Path, "a", "b", "adapter");
        Adapted(1).SaveAdapter(directory);
        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"], Files(directory).Keys.Order(StringComparer.Ordinal));
        Assert.Equal(["adapter"], Directory.EnumerateFileSystemEntries(Path.GetDirectoryName(directory)!).Select(Path.GetFileName));
    }

    [Fact]
    public void Saving_over_an_adapter_replaces_both_files_and_keeps_PEFTs_model_card()
    {
        string directory = _temp.File("adapter");
        Adapted(1).SaveAdapter(directory);
        File.WriteAllText(Path.Combine(directory, "README.md"), "model card");
        var before = Files(directory);

        Adapted(2, alpha: 16).SaveAdapter(directory);

        var after = Files(directory);
        Assert.Equal("model card", File.ReadAllText(Path.Combine(directory, "README.md")));
        Assert.False(before["adapter_model.safetensors"].AsSpan().SequenceEqual(after["adapter_model.safetensors"]));
        Assert.Contains("\"lora_alpha\": 16,", File.ReadAllText(Path.Combine(directory, "adapter_config.json")));
        Assert.Equal(["adapter"], _temp.Entries());
    }

    [Theory]
    [InlineData("staged")]          // both new files written, nothing renamed yet
    [InlineData("previous-moved")]  // the old directory moved aside, the new one not yet in place
    public void A_failure_during_save_leaves_the_previous_adapter_byte_for_byte(string step)
    {
        string directory = _temp.File("adapter");
        Adapted(1).SaveAdapter(directory);
        File.WriteAllText(Path.Combine(directory, "README.md"), "model card");
        var before = Files(directory);

        var e = Assert.Throws<IOException>(() => LoraModelFiles.Save(Adapted(2, alpha: 16), directory, null,
            afterStep: s => { if (s == step) throw new IOException("simulated disk failure"); }));

        Assert.Contains("simulated disk failure", e.Message);
        Assert.Contains("previous adapter there is unchanged", e.Message);
        AssertSameFiles(before, directory);
        Assert.Equal(["adapter"], _temp.Entries()); // no staging or previous sibling left behind
        Assert.Equal(3, LoraModel.LoadAdapter(new Mlp(), directory).Layers.Count);
    }

    [Fact]
    public void A_failure_before_the_first_save_leaves_no_directory()
    {
        string directory = _temp.File("adapter");
        Assert.Throws<IOException>(() => LoraModelFiles.Save(Adapted(1), directory, null, afterStep: _ => throw new IOException("simulated")));
        Assert.Empty(_temp.Entries());
    }

    [Fact]
    public void A_directory_holding_other_files_is_refused_not_emptied()
    {
        string directory = _temp.File("adapter");
        Adapted(1).SaveAdapter(directory);
        File.WriteAllText(Path.Combine(directory, "notes.txt"), "mine");
        var before = Files(directory);

        var e = Assert.Throws<IOException>(() => Adapted(2).SaveAdapter(directory));

        Assert.Contains("'notes.txt'", e.Message);
        Assert.Contains("directory of its own", e.Message);
        AssertSameFiles(before, directory);
        Assert.Equal(["adapter"], _temp.Entries());
    }

    [Fact]
    public void A_subdirectory_is_refused_too()
    {
        string directory = _temp.File("adapter");
        Directory.CreateDirectory(Path.Combine(directory, "checkpoint-100"));
        var e = Assert.Throws<IOException>(() => Adapted(1).SaveAdapter(directory));
        Assert.Contains("'checkpoint-100'", e.Message);
        Assert.True(Directory.Exists(Path.Combine(directory, "checkpoint-100")));
    }

    [Fact]
    public void A_file_at_the_path_is_refused()
    {
        string path = _temp.File("adapter");
        File.WriteAllText(path, "x");
        var e = Assert.Throws<IOException>(() => Adapted(1).SaveAdapter(path));
        Assert.Contains("a file with that name exists", e.Message);
        Assert.Equal("x", File.ReadAllText(path));
    }

    [Fact]
    public void A_symbolic_link_at_the_path_is_refused()
    {
        string target = _temp.File("real");
        Adapted(1).SaveAdapter(target);
        var before = Files(target);
        string link = _temp.File("link");
        Directory.CreateSymbolicLink(link, target);

        var e = Assert.Throws<IOException>(() => Adapted(2).SaveAdapter(link));

        Assert.Contains("symbolic link", e.Message);
        AssertSameFiles(before, target);
    }

    [Fact]
    public void After_a_crash_between_the_renames_a_load_points_to_the_complete_previous_adapter()
    {
        // The state a crash between "move the old directory aside" and "move the new one in" leaves.
        string directory = _temp.File("adapter");
        Adapted(1).SaveAdapter(directory);
        string previous = _temp.File(".adapter.dorasharp-previous-0123456789abcdef0123456789abcdef");
        Directory.Move(directory, previous);

        var e = Assert.Throws<AdapterFormatException>(() => LoraModel.LoadAdapter(new Mlp(), directory));

        Assert.Contains("the adapter directory does not exist", e.Message);
        Assert.Contains($"interrupted left the previous adapter in {previous}", e.Message);
        Assert.Equal(3, LoraModel.LoadAdapter(new Mlp(), previous).Layers.Count);
    }
}
