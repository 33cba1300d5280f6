using System.Text.Json;
using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>Named adapters and modules_to_save on disk, in PEFT's layout and keys.</summary>
[Collection(SeededRuns.Name)] // Model() rebuilds the same base model from a seed
public sealed class NamedAdapterFilesTests : IDisposable
{
    private static readonly LoraConfig LoraOnBlocks = new() { R = 2, LoraAlpha = 4, TargetModules = ["fc1", "fc2"] };
    private static readonly LoraConfig DoraWithHead = new() { R = 3, LoraAlpha = 3, UseDora = true, TargetModules = ["fc2"], ModulesToSave = ["heads.b"] };
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static ContainerNet Model()
    {
        torch.manual_seed(21);
        return new ContainerNet();
    }

    /// <summary>Two adapters, both with visible effects; 'other' also trains heads.b in full.</summary>
    private static LoraModel TwoAdapters(ContainerNet model)
    {
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        NamedAdapterTests.Perturb(lora.Layers, 1);
        lora.AddAdapter("other", DoraWithHead);
        NamedAdapterTests.Perturb(lora.LayersOf("other"), 2);
        lora.SetAdapter("other");
        using (no_grad())
        {
            foreach (var t in lora.ModuleToSaveValues("other", "heads.b").Values) t.add_(0.25);
        }
        lora.SetAdapter("default");
        return lora;
    }

    private static JsonElement Config(string dir) => JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json"))).RootElement;

    [Fact]
    public void Saving_two_adapters_writes_PEFTs_layout_and_keys()
    {
        var lora = TwoAdapters(Model());
        lora.SaveAdapter(_dir.Path);

        Assert.Equal(["adapter_config.json", "adapter_model.safetensors", "other"], _dir.Entries());
        Assert.Equal(["adapter_config.json", "adapter_model.safetensors"],
            Directory.GetFileSystemEntries(_dir.File("other")).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var rootKeys = SafetensorsReader.Read(_dir.File("adapter_model.safetensors")).Keys.Order(StringComparer.Ordinal);
        Assert.Equal(
        [
            "base_model.model.blocks.0.fc1.lora_A.weight", "base_model.model.blocks.0.fc1.lora_B.weight",
            "base_model.model.blocks.0.fc2.lora_A.weight", "base_model.model.blocks.0.fc2.lora_B.weight",
            "base_model.model.blocks.1.fc1.lora_A.weight", "base_model.model.blocks.1.fc1.lora_B.weight",
            "base_model.model.blocks.1.fc2.lora_A.weight", "base_model.model.blocks.1.fc2.lora_B.weight",
        ], rootKeys);
        var other = SafetensorsReader.Read(Path.Combine(_dir.File("other"), "adapter_model.safetensors"));
        Assert.Equal(
        [
            "base_model.model.blocks.0.fc2.lora_A.weight", "base_model.model.blocks.0.fc2.lora_B.weight",
            "base_model.model.blocks.0.fc2.lora_magnitude_vector",
            "base_model.model.blocks.1.fc2.lora_A.weight", "base_model.model.blocks.1.fc2.lora_B.weight",
            "base_model.model.blocks.1.fc2.lora_magnitude_vector",
            "base_model.model.heads.b.bias", "base_model.model.heads.b.weight",
        ], other.Keys.Order(StringComparer.Ordinal));
        TensorAssert.Equal(lora.ModuleToSaveValues("other", "heads.b")["weight"], other["base_model.model.heads.b.weight"], "saved head weight");

        Assert.Equal(JsonValueKind.Null, Config(_dir.Path).GetProperty("modules_to_save").ValueKind);
        Assert.Equal(["heads.b"], Config(_dir.File("other")).GetProperty("modules_to_save").EnumerateArray().Select(e => e.GetString()));
        Assert.True(Config(_dir.File("other")).GetProperty("use_dora").GetBoolean());
        Assert.Equal(3, Config(_dir.File("other")).GetProperty("r").GetInt32());
    }

    [Fact]
    public void Both_adapters_load_back_onto_a_fresh_base_model_and_compute_the_same_outputs()
    {
        var x = randn(4, 6);
        var model = Model();
        var baseOut = model.call(x).detach();
        var lora = TwoAdapters(model);
        var outDefault = model.call(x).detach();
        lora.SetAdapter("other");
        var outOther = model.call(x).detach();
        lora.SaveAdapter(_dir.Path);

        var fresh = Model();
        var loaded = LoraModel.LoadAdapter(fresh, _dir.Path);
        loaded.LoadAdapter(_dir.File("other"), "other");
        Assert.Equal(["default", "other"], loaded.AdapterNames);
        TensorAssert.Equal(outDefault, fresh.call(x), "default, loaded");
        loaded.SetAdapter("other");
        Assert.Equal(["heads.b"], loaded.ModulesToSave);
        TensorAssert.Equal(outOther, fresh.call(x), "other (with its trained head), loaded");
        using (loaded.DisableAdapters()) TensorAssert.Equal(baseOut, fresh.call(x), "disabled: base model and original head");
        // Loaded for inference (PEFT's is_trainable=False): nothing trains, the head included.
        Assert.Empty(loaded.TrainableParameters());
    }

    [Fact]
    public void A_trainable_load_of_modules_to_save_trains_the_head_again()
    {
        var lora = TwoAdapters(Model());
        lora.SaveAdapter(_dir.Path, new AdapterSaveOptions { SelectedAdapters = ["other"] });
        var fresh = Model();
        var loaded = LoraModel.LoadAdapter(fresh, _dir.File("other"), isTrainable: true, adapterName: "other");
        Assert.Equal("other", loaded.ActiveAdapter);
        var head = NamedAdapterTests.ModuleAt(fresh, "heads.b");
        Assert.All(head.parameters(), p => Assert.True(p.requires_grad));
        TensorAssert.Equal(lora.ModuleToSaveValues("other", "heads.b")["bias"], head.state_dict()["bias"], "loaded head bias");
    }

    [Fact]
    public void Saving_selected_non_default_adapters_writes_only_their_sub_folders()
    {
        var lora = TwoAdapters(Model());
        File.WriteAllText(_dir.File("notes.txt"), "mine");
        lora.SaveAdapter(_dir.Path, new AdapterSaveOptions { SelectedAdapters = ["other"] });
        Assert.Equal(["notes.txt", "other"], _dir.Entries());
        Assert.Equal("mine", File.ReadAllText(_dir.File("notes.txt")));

        var unknown = Assert.Throws<ArgumentException>(() => lora.SaveAdapter(_dir.Path, new AdapterSaveOptions { SelectedAdapters = ["nope"] }));
        Assert.Contains("No adapter is named 'nope'", unknown.Message);
    }

    [Fact]
    public void Saving_over_a_directory_with_a_sub_folder_of_an_adapter_not_saved_is_refused()
    {
        var lora = TwoAdapters(Model());
        lora.SaveAdapter(_dir.Path);
        lora.DeleteAdapter("other");
        var bytes = File.ReadAllBytes(Path.Combine(_dir.File("other"), "adapter_model.safetensors"));
        var e = Assert.Throws<IOException>(() => lora.SaveAdapter(_dir.Path));
        Assert.EndsWith(": holds 'other', which is not part of the adapters being saved; saving replaces the directory as a whole (so the adapter files always change together), so it only replaces a directory holding adapter_config.json, adapter_model.safetensors, README.md. Save them into a directory of its own.", e.Message);
        Assert.Equal(bytes, File.ReadAllBytes(Path.Combine(_dir.File("other"), "adapter_model.safetensors")));
    }

    [Fact]
    public void A_modules_to_save_file_without_the_modules_tensors_is_refused_and_changes_nothing()
    {
        var lora = TwoAdapters(Model());
        lora.SaveAdapter(_dir.Path);
        var tensors = Path.Combine(_dir.File("other"), "adapter_model.safetensors");
        var kept = SafetensorsReader.Read(tensors).Where(kv => !kv.Key.Contains("heads.b.bias")).ToList();
        SafetensorsFile.Write(tensors, kept, new Dictionary<string, string> { ["format"] = "pt" });

        var fresh = Model();
        var loaded = LoraModel.LoadAdapter(fresh, _dir.Path);
        var x = randn(4, 6);
        var before = fresh.call(x).detach();
        var e = Assert.Throws<AdapterMismatchException>(() => loaded.LoadAdapter(_dir.File("other"), "other"));
        Assert.EndsWith("adapter_model.safetensors: missing key 'base_model.model.heads.b.bias': adapter_config.json lists module 'heads.b' in modules_to_save, so the file must hold its whole state (weight, bias)", e.Message);
        Assert.Equal(["default"], loaded.AdapterNames);
        TensorAssert.Equal(before, fresh.call(x), "after the refused load");

        var taken = Assert.Throws<ArgumentException>(() => loaded.LoadAdapter(_dir.Path, "default"));
        Assert.Contains("exists already", taken.Message);
    }
}
