using DoraSharp.Examples.Experiments;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

public sealed class MnistCnnTests
{
    [Fact]
    public void Its_layers_are_named_as_a_pytorch_modules_attributes()
    {
        using var model = new MnistCnn();
        Assert.Equal(new[] { "conv1", "conv2" }, model.named_modules().Where(m => m.module is Conv2d).Select(m => m.name));
        Assert.Equal(new[] { "fc" }, model.named_modules().Where(m => m.module is Linear).Select(m => m.name));
        Assert.Equal(new[] { "conv1", "conv2" }, MnistCnn.ConvLayers);
        Assert.Equal(new[] { "conv1", "conv2", "fc" }, MnistCnn.AdapterTargets);
        var shapes = model.named_parameters().ToDictionary(p => p.name, p => p.parameter.shape);
        Assert.Equal(new[] { "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc.weight", "fc.bias" }, shapes.Keys);
        Assert.Equal(new long[] { 8, 1, 3, 3 }, shapes["conv1.weight"]);
        Assert.Equal(new long[] { 16, 8, 3, 3 }, shapes["conv2.weight"]);
        Assert.Equal(new long[] { 10, 16 * 7 * 7 }, shapes["fc.weight"]);
        // 8·9 + 8 + 16·8·9 + 16 + 10·784 + 10
        Assert.Equal(9_098, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void It_maps_flat_784_pixel_rows_and_28x28_images_alike_to_ten_logits()
    {
        torch.manual_seed(3);
        using var model = new MnistCnn();
        var flat = torch.rand(5, 784);
        var logits = model.call(flat);
        Assert.Equal(new long[] { 5, 10 }, logits.shape);
        TensorAssert.Equal(logits, model.call(flat.view(5, 1, 28, 28)), "the same images as (n, 1, 28, 28)");
        Assert.ThrowsAny<Exception>(() => model.call(torch.rand(5, 783)));
    }

    [Fact]
    public void A_flat_row_is_read_as_28_rows_of_28_pixels()
    {
        // Identity kernels and an fc that reads one place of the 7 × 7 map: a pixel at (row 3, column 20) is pooled
        // to (1, 10), then to (0, 5), flat index 5. The same pixel transposed, (20, 3), ends at (5, 0), index 35.
        using var model = new MnistCnn(channels1: 1, channels2: 1, classes: 1);
        using (torch.no_grad())
        {
            foreach (var (name, p) in model.named_parameters()) p.zero_();
            model.get_parameter("conv1.weight")![0, 0, 1, 1] = torch.tensor(1f);
            model.get_parameter("conv2.weight")![0, 0, 1, 1] = torch.tensor(1f);
            model.get_parameter("fc.weight")![0, 5] = torch.tensor(1f);
        }
        float Logit(int row, int column)
        {
            var x = torch.zeros(1, 784);
            x[0, row * 28 + column] = torch.tensor(1f);
            return model.call(x)[0, 0].item<float>();
        }
        Assert.Equal(1f, Logit(3, 20));
        Assert.Equal(0f, Logit(20, 3));
    }

    [Fact]
    public void Its_convolutions_and_classifier_get_peft_shaped_adapters()
    {
        torch.manual_seed(4);
        using var model = new MnistCnn();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = true, TargetModules = MnistCnn.AdapterTargets });

        Assert.Equal(new[] { "conv1", "conv2", "fc" }, lora.Layers.Keys);
        Assert.IsType<LoraConv2d>(lora.Layers["conv1"]);
        Assert.IsType<LoraConv2d>(lora.Layers["conv2"]);
        Assert.IsType<LoraLinear>(lora.Layers["fc"]);
        var shapes = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.shape);
        Assert.Equal(new long[] { 4, 1, 3, 3 }, shapes["conv1.lora_A.weight"]);
        Assert.Equal(new long[] { 8, 4, 1, 1 }, shapes["conv1.lora_B.weight"]);
        Assert.Equal(new long[] { 1, 8, 1, 1 }, shapes["conv1.lora_magnitude_vector"]);
        Assert.Equal(new long[] { 4, 8, 3, 3 }, shapes["conv2.lora_A.weight"]);
        Assert.Equal(new long[] { 16, 4, 1, 1 }, shapes["conv2.lora_B.weight"]);
        Assert.Equal(new long[] { 1, 16, 1, 1 }, shapes["conv2.lora_magnitude_vector"]);
        Assert.Equal(new long[] { 4, 784 }, shapes["fc.lora_A.weight"]);
        Assert.Equal(new long[] { 10 }, shapes["fc.lora_magnitude_vector"]);
        // The base keys are unchanged: a plain CNN's checkpoint still loads.
        Assert.Contains("conv1.weight", shapes.Keys);
        Assert.Contains("fc.bias", shapes.Keys);
        // A (r·(in·9) + out·r per conv, r·(784 + 10) for fc) plus one magnitude per output channel or feature.
        Assert.Equal(4 * 9 + 8 * 4 + 4 * 72 + 16 * 4 + 4 * (784 + 10) + (8 + 16 + 10), lora.TrainableParameters().Sum(p => p.numel()));
    }

    [Fact]
    public void A_copy_has_the_same_values_and_its_own_storage()
    {
        torch.manual_seed(1);
        using var model = new MnistCnn(channels1: 4, channels2: 6);
        model.eval();
        using var copy = model.Copy();
        Assert.False(copy.training);
        Assert.Equal((4, 6, 10), (copy.Channels1, copy.Channels2, copy.Classes));
        foreach (var (name, p) in model.named_parameters())
            TensorAssert.Equal(p, copy.get_parameter(name)!, name);
        using (torch.no_grad()) copy.get_parameter("conv1.weight")!.add_(1);
        Assert.False(model.get_parameter("conv1.weight")!.eq(copy.get_parameter("conv1.weight")!).all().item<bool>());
    }

    [Fact]
    public void Copying_an_adapted_model_is_refused()
    {
        using var model = new MnistCnn(channels1: 2, channels2: 2);
        LoraModel.Wrap(model, new LoraConfig { R = 2, TargetModules = MnistCnn.ConvLayers });
        Assert.Contains("MnistCnn.Copy", Assert.Throws<InvalidOperationException>(() => model.Copy()).Message);
    }
}
