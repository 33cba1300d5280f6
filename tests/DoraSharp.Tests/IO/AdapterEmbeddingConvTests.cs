using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Adapter files for Embedding and Conv2d adapters next to Linear ones, on <see cref="TokenConvNet"/> (embed:
/// Embedding(20, 8), conv: Conv2d(1, 4, 3×3), mix: Conv2d(4, 2, 1×1), head: Linear(128, 3)): PEFT's keys and shapes
/// on disk, bit-exact round trips, and refusals of wrong shapes and of factors named for another layer type.
/// </summary>
// Builds the same base weights twice from torch.manual_seed (Trained, and LoadAdapterWeights_fills_…): libtorch's default
// generator is process-wide, so a test drawing from it in parallel would change the second copy.
[Collection(SeededRuns.Name)]
public sealed class AdapterEmbeddingConvTests : IDisposable
{
    private const string Prefix = "base_model.model.";
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static LoraConfig Config(bool dora) => new() { R = 2, LoraAlpha = 5, UseDora = dora, TargetModules = ["embed", "conv", "mix", "head"] };

    private static Tensor Tokens(long seed) =>
        randint(0, 20, new long[] { 5, 8 }, dtype: ScalarType.Int64, generator: new Generator().manual_seed(seed));

    /// <summary>
    /// PEFT's keys and shapes for <see cref="Config"/> (r = 2), written out here rather than built by the code under
    /// test: lora.Embedding's ParameterDict factors have no ".weight"; a Conv2d's magnitude is (1, out, 1, 1).
    /// </summary>
    private static Dictionary<string, long[]> ExpectedKeys(bool dora)
    {
        var keys = new Dictionary<string, long[]>
        {
            ["base_model.model.embed.lora_embedding_A"] = [2, 20],
            ["base_model.model.embed.lora_embedding_B"] = [8, 2],
            ["base_model.model.conv.lora_A.weight"] = [2, 1, 3, 3],
            ["base_model.model.conv.lora_B.weight"] = [4, 2, 1, 1],
            ["base_model.model.mix.lora_A.weight"] = [2, 4, 1, 1],
            ["base_model.model.mix.lora_B.weight"] = [2, 2, 1, 1],
            ["base_model.model.head.lora_A.weight"] = [2, 128],
            ["base_model.model.head.lora_B.weight"] = [3, 2],
        };
        if (dora)
        {
            keys["base_model.model.embed.lora_magnitude_vector"] = [8];
            keys["base_model.model.conv.lora_magnitude_vector"] = [1, 4, 1, 1];
            keys["base_model.model.mix.lora_magnitude_vector"] = [1, 2, 1, 1];
            keys["base_model.model.head.lora_magnitude_vector"] = [3];
        }
        return keys;
    }

    /// <summary>A model with "trained" adapters: A and B random (at init one of them is zero), magnitudes moved off their init.</summary>
    private static (TokenConvNet Model, LoraModel Lora) Trained(bool dora, ScalarType dtype = ScalarType.Float32, int seed = 1)
    {
        torch.manual_seed(seed);
        var model = new TokenConvNet();
        model.to(dtype);
        var lora = LoraModel.Wrap(model, Config(dora));
        var g = new Generator().manual_seed(seed);
        using (no_grad())
        {
            foreach (var layer in lora.Layers.Values)
            {
                layer.LoraA.copy_(randn(layer.LoraA.shape, dtype: layer.LoraA.dtype, generator: g).mul_(0.3));
                layer.LoraB.copy_(randn(layer.LoraB.shape, dtype: layer.LoraB.dtype, generator: g).mul_(0.3));
                layer.Magnitude?.mul_(rand(layer.Magnitude.shape, dtype: layer.Magnitude.dtype, generator: g).add_(0.5));
            }
        }
        return (model, lora);
    }

    private string Saved(LoraModel lora)
    {
        string dir = _temp.File($"adapter-{Guid.NewGuid():N}");
        lora.SaveAdapter(dir);
        return dir;
    }

    private static string TensorsOf(string dir) => Path.Combine(dir, "adapter_model.safetensors");

    private static byte[] Output(nn.Module<Tensor, Tensor> model, Tensor x)
    {
        using var noGrad = no_grad();
        using var y = model.call(x);
        return TensorTestData.Bytes(y.contiguous());
    }

    // ---- saving ---------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false, ScalarType.Float32)]
    [InlineData(true, ScalarType.Float32)]
    [InlineData(true, ScalarType.Float64)]
    public void Save_writes_PEFTs_keys_and_shapes_for_Embedding_Conv2d_and_Linear(bool dora, ScalarType dtype)
    {
        var (model, lora) = Trained(dora, dtype);
        string dir = Saved(lora);

        using SafetensorsContent file = SafetensorsFile.Read(TensorsOf(dir));
        var expected = ExpectedKeys(dora);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), file.Tensors.Keys.Order(StringComparer.Ordinal));
        var state = model.state_dict();
        foreach (var (key, shape) in expected)
        {
            Tensor tensor = file.Tensors[key];
            Assert.True(shape.SequenceEqual(tensor.shape), $"{key}: shape [{string.Join(", ", tensor.shape)}], expected [{string.Join(", ", shape)}]");
            Assert.Equal(dtype, tensor.dtype);
            // The model's own state-dict entry under the key less PEFT's prefix holds the same values.
            TensorAssert.Equal(state[key[Prefix.Length..]].detach(), tensor, key);
        }
    }

    // ---- loading --------------------------------------------------------------------------------------------

    [Theory]
    [InlineData(false, ScalarType.Float32)]
    [InlineData(true, ScalarType.Float32)]
    [InlineData(true, ScalarType.Float64)]
    public void A_loaded_adapter_computes_bit_for_bit_what_the_trained_one_does_merged_and_unmerged(bool dora, ScalarType dtype)
    {
        var (model, lora) = Trained(dora, dtype);
        string dir = Saved(lora);
        string basePath = _temp.File($"base-{Guid.NewGuid():N}.safetensors");
        BaseWeightsFile.Save(model, basePath);
        var baseWeights = SafetensorsReader.Read(basePath);

        torch.manual_seed(99); // other initial weights: everything must come from the files
        var fresh = new TokenConvNet();
        fresh.to(dtype);
        BaseWeightsFile.Load(fresh, basePath);
        var loaded = LoraModel.LoadAdapter(fresh, dir);
        Assert.Equal(["embed", "conv", "mix", "head"], loaded.Layers.Keys);
        Assert.IsType<LoraEmbedding>(loaded.Layers["embed"]);
        Assert.IsType<LoraConv2d>(loaded.Layers["conv"]);
        Assert.IsType<LoraConv2d>(loaded.Layers["mix"]);
        Assert.IsType<LoraLinear>(loaded.Layers["head"]);
        var expectedState = model.state_dict();
        var loadedState = fresh.state_dict();
        Assert.Equal(expectedState.Keys, loadedState.Keys);
        foreach (var (key, value) in expectedState) TensorAssert.Equal(value.detach(), loadedState[key].detach(), key);

        model.eval();
        using var x = Tokens(3);
        byte[] unmerged = Output(model, x);
        Assert.Equal(unmerged, Output(fresh, x));

        lora.Merge();
        loaded.Merge();
        foreach (string path in loaded.Layers.Keys) TensorAssert.Equal(lora.Layers[path].Weight.detach(), loaded.Layers[path].Weight.detach(), $"merged {path}.weight");
        Assert.Equal(Output(model, x), Output(fresh, x));
        using (no_grad())
        {
            // The merge is the same function: merged and unmerged outputs agree up to rounding.
            using var fromMerged = fresh.call(x);
            using var fromUnmerged = TensorTestData.FromBytes(dtype, fromMerged.shape, unmerged);
            double tol = dtype == ScalarType.Float64 ? 1e-10 : 1e-4;
            TensorAssert.Close(fromUnmerged, fromMerged, tol, tol, "merged output against the unmerged one");
        }

        lora.Unmerge();
        loaded.Unmerge();
        Assert.Equal(Output(model, x), Output(fresh, x));
        var restored = fresh.state_dict();
        foreach (var (key, value) in baseWeights)
        {
            // W + ΔW − ΔW (LoRA) or (W + ΔW)·m/n·n/m − ΔW (DoRA) in the weight's dtype: W up to rounding.
            double tol = dtype == ScalarType.Float64 ? 1e-12 : 1e-5;
            TensorAssert.Close(value, restored[key].detach(), tol, tol, $"{key} after merge and unmerge");
        }

        // Saving the loaded adapter writes the same bytes.
        string again = Saved(loaded);
        foreach (string name in new[] { "adapter_config.json", "adapter_model.safetensors" })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir, name)), File.ReadAllBytes(Path.Combine(again, name)));
        }
    }

    [Fact]
    public void LoadAdapterWeights_fills_existing_Embedding_and_Conv2d_adapters()
    {
        var (model, lora) = Trained(dora: true);
        string dir = Saved(lora);
        torch.manual_seed(1); // the same base weights as Trained's
        var other = new TokenConvNet();
        var target = LoraModel.Wrap(other, Config(dora: true));
        target.LoadAdapterWeights(dir);
        model.eval();
        other.eval();
        using var x = Tokens(4);
        Assert.Equal(Output(model, x), Output(other, x));
    }

    // ---- refusals ---------------------------------------------------------------------------------------------

    /// <summary>A DoRA adapter for a fresh <see cref="TokenConvNet"/>, its tensors edited by <paramref name="edit"/> (with the tests' own reader).</summary>
    private string EditedAdapter(Action<Dictionary<string, Tensor>> edit)
    {
        var (_, lora) = Trained(dora: true);
        string dir = Saved(lora);
        var tensors = SafetensorsReader.Read(TensorsOf(dir));
        edit(tensors);
        SafetensorsFile.Write(TensorsOf(dir), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return dir;
    }

    private static TException Refused<TException>(string dir, params string[] fragments) where TException : IOException
    {
        torch.manual_seed(5);
        var model = new TokenConvNet();
        using var x = Tokens(6);
        using var snapshot = ModelSnapshot.Take(model, x);
        var e = Assert.Throws<TException>(() => LoraModel.LoadAdapter(model, dir));
        Assert.Equal(TensorsOf(dir), e switch { AdapterFormatException f => f.FilePath, AdapterMismatchException m => m.FilePath, _ => null });
        Assert.StartsWith(TensorsOf(dir) + ": ", e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
        snapshot.AssertUnchanged(model);
        return e;
    }

    [Theory]
    [InlineData("embed.lora_embedding_A", new long[] { 2, 21 },
        "PEFT's lora_embedding_A for Embedding module 'embed' (num_embeddings 20, embedding_dim 8) has shape [2, 20]")]
    [InlineData("embed.lora_embedding_B", new long[] { 2, 8 },
        "PEFT's lora_embedding_B for Embedding module 'embed' (num_embeddings 20, embedding_dim 8) has shape [8, 2]")]
    [InlineData("embed.lora_magnitude_vector", new long[] { 20 },
        "PEFT's lora_magnitude_vector for Embedding module 'embed' (num_embeddings 20, embedding_dim 8) has shape [8]")]
    [InlineData("conv.lora_A.weight", new long[] { 2, 1, 5, 5 },
        "PEFT's lora_A.weight for Conv2d module 'conv' (1 → 4, kernel 3×3) has shape [2, 1, 3, 3]")]
    [InlineData("conv.lora_B.weight", new long[] { 4, 2 },
        "PEFT's lora_B.weight for Conv2d module 'conv' (1 → 4, kernel 3×3) has shape [4, 2, 1, 1]")]
    [InlineData("conv.lora_magnitude_vector", new long[] { 4 },
        "PEFT's lora_magnitude_vector for Conv2d module 'conv' (1 → 4, kernel 3×3) has shape [1, 4, 1, 1]")]
    [InlineData("mix.lora_A.weight", new long[] { 2, 4 },
        "PEFT's lora_A.weight for Conv2d module 'mix' (4 → 2, kernel 1×1) has shape [2, 4, 1, 1]")]
    [InlineData("head.lora_magnitude_vector", new long[] { 1, 3, 1, 1 },
        "PEFT's lora_magnitude_vector for Linear module 'head' (128 → 3) has shape [3]")]
    public void A_tensor_of_another_layers_shape_is_refused(string name, long[] shape, string expected)
    {
        string key = Prefix + name;
        string dir = EditedAdapter(t => t[key] = zeros(shape));
        var e = Refused<AdapterMismatchException>(dir,
            $"tensor '{key}' has shape [{string.Join(", ", shape)}], but {expected}: the adapter is for a layer of another size");
        Assert.Equal(key, e.Key);
    }

    [Theory]
    [InlineData("embed.lora_embedding_B", new long[] { 8, 3 }, "has shape [8, 2]")]
    [InlineData("conv.lora_A.weight", new long[] { 3, 1, 3, 3 }, "has shape [2, 1, 3, 3]")]
    [InlineData("conv.lora_B.weight", new long[] { 4, 3, 1, 1 }, "has shape [4, 2, 1, 1]")]
    public void A_factor_of_another_rank_is_refused_as_disagreeing_with_r(string name, long[] shape, string expected)
    {
        string key = Prefix + name;
        string dir = EditedAdapter(t => t[key] = zeros(shape));
        Refused<AdapterFormatException>(dir,
            $"tensor '{key}' has shape [{string.Join(", ", shape)}], which disagrees with \"r\": 2 in adapter_config.json", expected);
    }

    [Theory]
    [InlineData("embed.lora_embedding_A", "embed.lora_A.weight",
        "module 'embed' is an Embedding, for which PEFT names this tensor 'base_model.model.embed.lora_embedding_A'",
        "(PEFT keeps them in a ParameterDict, so without .weight); lora_A.weight is the name for Linear and Conv2d modules")]
    [InlineData("embed.lora_embedding_B", "embed.lora_B.weight",
        "module 'embed' is an Embedding, for which PEFT names this tensor 'base_model.model.embed.lora_embedding_B'",
        "lora_B.weight is the name for Linear and Conv2d modules")]
    [InlineData("conv.lora_A.weight", "conv.lora_embedding_A",
        "module 'conv' is a Conv2d, for which PEFT names this tensor 'base_model.model.conv.lora_A.weight'",
        "its factors are lora_A.weight and lora_B.weight; lora_embedding_A is the name for Embedding modules")]
    [InlineData("head.lora_B.weight", "head.lora_embedding_B",
        "module 'head' is a Linear, for which PEFT names this tensor 'base_model.model.head.lora_B.weight'",
        "lora_embedding_B is the name for Embedding modules")]
    [InlineData("embed.lora_embedding_A", "embed.lora_embedding_A.weight",
        "it is not a LoRA tensor (PEFT's LoRA keys end in .lora_A.weight, .lora_B.weight, .lora_embedding_A, .lora_embedding_B, .lora_magnitude_vector)", "")]
    public void A_factor_named_for_another_layer_type_is_refused_with_PEFTs_name(string from, string to, string fragment1, string fragment2)
    {
        string key = Prefix + to;
        string dir = EditedAdapter(t =>
        {
            t[key] = t[Prefix + from];
            t.Remove(Prefix + from);
        });
        var e = Refused<AdapterMismatchException>(dir, $"unexpected key '{key}': {fragment1}", fragment2);
        Assert.Equal(key, e.Key);
    }

    [Fact]
    public void A_factor_under_both_names_is_refused()
    {
        const string Key = Prefix + "embed.lora_A.weight";
        string dir = EditedAdapter(t => t[Key] = t[Prefix + "embed.lora_embedding_A"].clone());
        var e = Refused<AdapterMismatchException>(dir, $"unexpected key '{Key}'", "PEFT names this tensor 'base_model.model.embed.lora_embedding_A'");
        Assert.Equal(Key, e.Key);
    }

    [Fact]
    public void A_missing_Embedding_factor_is_refused_naming_the_Embedding_keys()
    {
        const string Key = Prefix + "embed.lora_embedding_B";
        string dir = EditedAdapter(t => t.Remove(Key));
        var e = Refused<AdapterMismatchException>(dir,
            $"missing key '{Key}': adapter_config.json targets Embedding module 'embed', so the file must hold its lora_embedding_A, lora_embedding_B, lora_magnitude_vector");
        Assert.Equal(Key, e.Key);
    }

    [Fact]
    public void LoadAdapterWeights_refuses_a_misnamed_factor_and_changes_nothing()
    {
        string dir = EditedAdapter(t =>
        {
            t[Prefix + "conv.lora_embedding_A"] = t[Prefix + "conv.lora_A.weight"];
            t.Remove(Prefix + "conv.lora_A.weight");
        });
        torch.manual_seed(2);
        var model = new TokenConvNet();
        var lora = LoraModel.Wrap(model, Config(dora: true));
        using var x = Tokens(7);
        using var snapshot = ModelSnapshot.Take(model, x);
        var e = Assert.Throws<AdapterMismatchException>(() => lora.LoadAdapterWeights(dir));
        Assert.Equal(Prefix + "conv.lora_embedding_A", e.Key);
        Assert.Contains("module 'conv' is a Conv2d, for which PEFT names this tensor 'base_model.model.conv.lora_A.weight'", e.Message);
        snapshot.AssertUnchanged(model);
    }

    // ---- key parsing ----------------------------------------------------------------------------------------

    [Theory]
    [InlineData("base_model.model.layers.0.lora_A.weight", "layers.0", "LoraA", "lora_A.weight")]
    [InlineData("base_model.model.layers.0.lora_B.weight", "layers.0", "LoraB", "lora_B.weight")]
    [InlineData("base_model.model.emb.lora_embedding_A", "emb", "LoraA", "lora_embedding_A")]
    [InlineData("base_model.model.model.embed_tokens.lora_embedding_B", "model.embed_tokens", "LoraB", "lora_embedding_B")]
    [InlineData("base_model.model.conv.lora_magnitude_vector", "conv", "Magnitude", "lora_magnitude_vector")]
    public void AdapterKeys_parses_every_PEFT_LoRA_name(string key, string path, string kind, string name)
    {
        Assert.True(AdapterKeys.TryParse(key, out string actualPath, out AdapterTensorKind actualKind, out string actualName));
        Assert.Equal(path, actualPath);
        Assert.Equal(kind, actualKind.ToString());
        Assert.Equal(name, actualName);
    }

    [Theory]
    [InlineData("base_model.model.emb.lora_embedding_A.weight")]
    [InlineData("base_model.model.lora_embedding_A")]
    [InlineData("base_model.model.emb.xlora_embedding_A")]
    [InlineData("base_model.model.fc.lora_A.default.weight")]
    [InlineData("emb.lora_embedding_A")]
    public void AdapterKeys_does_not_take_other_keys_for_LoRA_keys(string key)
    {
        Assert.False(AdapterKeys.TryParse(key, out _, out _, out _));
    }
}
