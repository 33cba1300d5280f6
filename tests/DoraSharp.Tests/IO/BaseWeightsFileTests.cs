using DoraSharp.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>Base weights as a PyTorch-named safetensors state dict: load, save, and refusals that change nothing.</summary>
public sealed class BaseWeightsFileTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void The_fixtures_PyTorch_state_dict_loads_bit_for_bit()
    {
        var model = new Mlp();
        BaseWeightsFile.Load(model, AdapterFixture.BaseWeightsPath);
        var file = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        var state = model.state_dict();
        Assert.Equal(file.Keys.Order(StringComparer.Ordinal), state.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in file) TensorAssert.Equal(value, state[key].detach(), key);
    }

    [Fact]
    public void Save_writes_the_base_state_dict_without_adapter_tensors()
    {
        torch.manual_seed(4);
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 2, UseDora = true, TargetModules = ["layers.0", "layers.4"] });
        string path = _temp.File("base.safetensors");
        BaseWeightsFile.Save(model, path);

        var file = SafetensorsReader.Read(path);
        Assert.Equal(
            ["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight", "layers.4.bias", "layers.4.weight"],
            file.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, value) in file) TensorAssert.Equal(model.state_dict()[key].detach(), value, key);
        using SafetensorsContent content = SafetensorsFile.Read(path);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, content.Metadata);

        lora.Merge();
        Assert.Throws<InvalidOperationException>(() => BaseWeightsFile.Save(model, _temp.File("merged.safetensors")));
    }

    [Fact]
    public void Loading_base_weights_under_DoRA_adapters_drops_the_cached_norms()
    {
        // In eval mode a DoRA layer caches ‖W + s·B·A‖; a load writes W in place, which the cache cannot see.
        var model = new Mlp();
        var lora = LoraModel.LoadAdapter(model, AdapterFixture.Directory);
        var io = SafetensorsReader.Read(AdapterFixture.IoPath);
        using (no_grad())
        {
            _ = model.call(io["x"]); // fills the caches with the norms of the random initial weights
            BaseWeightsFile.Load(model, AdapterFixture.BaseWeightsPath);
            var expected = io["expected_logits"];
            double atol = 2e-5 * Math.Max(1, expected.abs().max().to(ScalarType.Float64).item<double>());
            TensorAssert.Close(expected, model.call(io["x"]), 1e-4, atol, "logits after loading base weights under loaded adapters");
        }
    }

    [Fact]
    public void Loading_base_weights_under_Embedding_and_Conv2d_DoRA_adapters_drops_their_cached_norms()
    {
        torch.manual_seed(3);
        string path = _temp.File("token-conv.safetensors");
        BaseWeightsFile.Save(new TokenConvNet(), path);

        torch.manual_seed(4);
        var model = new TokenConvNet();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 2, UseDora = true, TargetModules = ["embed", "conv", "mix", "head"] });
        model.eval();
        using var x = randint(0, 20, new long[] { 3, 8 }, dtype: ScalarType.Int64, generator: new Generator().manual_seed(1));
        using (no_grad())
        {
            _ = model.call(x); // fills the caches with the norms of the initial weights
            BaseWeightsFile.Load(model, path);
            using var afterLoad = model.call(x);
            lora.InvalidateCaches();
            using var recomputed = model.call(x);
            TensorAssert.Equal(recomputed, afterLoad, "output after loading base weights under cached DoRA norms");
        }
    }

    private void Refused(nn.Module<Tensor, Tensor> model, Dictionary<string, Tensor> tensors, string key, params string[] fragments)
    {
        string path = _temp.File($"base-{Guid.NewGuid():N}.safetensors");
        SafetensorsFile.Write(path, tensors);
        using var snapshot = ModelSnapshot.Take(model);
        var e = Assert.Throws<AdapterMismatchException>(() => BaseWeightsFile.Load(model, path));
        Assert.Equal(path, e.FilePath);
        Assert.Equal(key, e.Key);
        Assert.StartsWith(path + ": ", e.Message);
        foreach (string fragment in fragments) Assert.Contains(fragment, e.Message);
        snapshot.AssertUnchanged(model);
    }

    [Fact]
    public void A_missing_key_is_refused()
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        tensors.Remove("layers.2.bias");
        Refused(new Mlp(), tensors, "layers.2.bias", "missing key 'layers.2.bias'");
    }

    [Fact]
    public void An_unexpected_key_is_refused()
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        tensors["layers.6.weight"] = torch.zeros(2, 10);
        Refused(new Mlp(), tensors, "layers.6.weight", "unexpected key 'layers.6.weight'", "different architecture");
    }

    [Fact]
    public void Adapter_tensors_are_not_base_weights()
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        tensors["base_model.model.layers.0.lora_A.weight"] = torch.zeros(4, 784);
        Refused(new Mlp(), tensors, "base_model.model.layers.0.lora_A.weight", "PEFT's 'base_model.model.' prefix");
    }

    [Fact]
    public void A_shape_mismatch_is_refused()
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        Refused(new Mlp(784, 16, 64, 10), tensors, "layers.0.weight", "shape [32, 784], but the model's has shape [16, 784]");
    }

    [Fact]
    public void An_integer_tensor_for_a_float_parameter_is_refused_but_float64_converts()
    {
        var tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        tensors["layers.4.bias"] = torch.zeros(10, dtype: ScalarType.Int32);
        Refused(new Mlp(), tensors, "layers.4.bias", "dtype Int32", "Float32");

        tensors = SafetensorsReader.Read(AdapterFixture.BaseWeightsPath);
        var wide = tensors.ToDictionary(kv => kv.Key, kv => kv.Value.to(ScalarType.Float64));
        string path = _temp.File("f64.safetensors");
        SafetensorsFile.Write(path, wide);
        var model = new Mlp();
        BaseWeightsFile.Load(model, path);
        foreach (var (key, value) in tensors) TensorAssert.Equal(value, model.state_dict()[key].detach(), key);
    }
}
