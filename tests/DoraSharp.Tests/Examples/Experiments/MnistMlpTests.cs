using DoraSharp.Examples.Experiments;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

public sealed class MnistMlpTests
{
    [Fact]
    public void Its_linear_layers_are_named_as_in_pytorchs_sequential()
    {
        using var model = new MnistMlp();
        var linear = model.named_modules().Where(m => m.module is Linear).Select(m => m.name).ToArray();
        Assert.Equal(new[] { "layers.0", "layers.2", "layers.4" }, linear);
        Assert.Equal(linear, MnistMlp.LinearLayers);
        Assert.Equal(
            new[] { "layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias", "layers.4.weight", "layers.4.bias" },
            model.state_dict().Keys);
        // 784·32 + 32 + 32·64 + 64 + 64·10 + 10
        Assert.Equal(27_882, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void A_copy_has_the_same_values_and_its_own_storage()
    {
        torch.manual_seed(1);
        using var model = new MnistMlp(hidden1: 8, hidden2: 4);
        model.eval();
        using var copy = model.Copy();
        Assert.False(copy.training);
        foreach (var (name, p) in model.named_parameters())
            TensorAssert.Equal(p, copy.get_parameter(name)!, name);
        using (torch.no_grad()) copy.get_parameter("layers.0.weight")!.add_(1);
        Assert.False(model.get_parameter("layers.0.weight")!.eq(copy.get_parameter("layers.0.weight")!).all().item<bool>());
    }

    [Fact]
    public void Copying_an_adapted_model_is_refused()
    {
        using var model = new MnistMlp(hidden1: 8, hidden2: 4);
        LoraModel.Wrap(model, new LoraConfig { R = 2, TargetModules = MnistMlp.LinearLayers });
        Assert.Throws<InvalidOperationException>(() => model.Copy());
    }
}
