using System.Text.Json.Nodes;
using DoraSharp.Examples.Experiments;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora demo` and `dora compare` end to end on the bundled MNIST, in-process. They set libtorch's thread count
/// (--threads) and Spectre.Console's width for the process, so they run alone (<see cref="ProcessWideState"/>).
/// </summary>
[Collection(ProcessWideState.Name)]
public sealed class DemoCommandTests : IDisposable
{
    /// <summary>The bundled test split's size, from data/mnist/README.md (checked by the data tests).</summary>
    private const int BundledTestImages = 2000;

    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_default_demo_evaluates_the_whole_test_split_and_the_shift_is_recovered()
    {
        var (code, error, _) = CliRunner.Run("demo", "--out", _dir.Path);
        Assert.True(code == 0, error);

        var json = JsonNode.Parse(File.ReadAllText(_dir.File("results.json")))!;
        Assert.Equal("shift", (string)json["settings"]!["task"]!);
        Assert.Equal(BundledTestImages, (int)json["data"]!["test_images"]!);
        Assert.Equal(BundledTestImages, (int)json["pretraining"]!["evaluated_images"]!);
        var methods = json["methods"]!.AsArray().ToDictionary(m => (string)m!["label"]!, m => m!);
        Assert.Equal(new[] { "Base (frozen)", "Full fine-tuning", "LoRA r=4", "DoRA r=4" }, methods.Keys);
        Assert.All(methods.Values, m => Assert.Equal(BundledTestImages, (int)m["evaluated_images"]!));

        double Accuracy(JsonNode node) => (double)node["accuracy"]!["mean"]!;
        // The recipe's shape: pretraining learns the digits; turned 90° they fall to about chance; fine-tuning recovers.
        Assert.True(Accuracy(json["pretraining"]!) > 0.8, "pretraining");
        Assert.True(Accuracy(methods["Base (frozen)"]) < 0.25, "frozen base on turned digits");
        Assert.True(Accuracy(methods["Full fine-tuning"]) > 0.8, "full fine-tuning");
        Assert.True(Accuracy(methods["LoRA r=4"]) > 0.6, "LoRA");
        Assert.True(Accuracy(methods["DoRA r=4"]) > 0.6, "DoRA");

        Assert.Equal(PngSignature, File.ReadAllBytes(_dir.File("loss_curves.png")).Take(8));
        // 8,000 images in batches of 64: 125 steps of pretraining, 250 for each of the three trained methods.
        Assert.Equal(1 + 125 + 3 * 250, File.ReadAllLines(_dir.File("losses.csv")).Length);
    }

    [Fact]
    public void The_cnn_demo_runs_the_same_four_methods_on_the_cnn_and_saves_its_conv_adapters_when_the_files_can_hold_them()
    {
        var (code, error, _) = CliRunner.Run("demo", "--model", "cnn", "--epochs", "1", "--out", _dir.Path);
        Assert.True(code == 0, error);

        var json = JsonNode.Parse(File.ReadAllText(_dir.File("results.json")))!;
        Assert.Equal("cnn", (string)json["settings"]!["model_kind"]!);
        Assert.StartsWith("CNN", (string)json["settings"]!["model"]!);
        Assert.Equal(new[] { "conv1", "conv2", "fc" }, json["settings"]!["target_modules"]!.AsArray().Select(t => (string)t!));
        var methods = json["methods"]!.AsArray().ToDictionary(m => (string)m!["label"]!, m => m!);
        Assert.Equal(new[] { "Base (frozen)", "Full fine-tuning", "LoRA r=4", "DoRA r=4" }, methods.Keys);
        Assert.Equal(new long[] { 0, 9_098, 3_596, 3_630 }, methods.Values.Select(m => (long)m["trainable_parameters"]!));
        Assert.All(methods.Values, m => Assert.Equal(BundledTestImages, (int)m["evaluated_images"]!));

        double Accuracy(JsonNode node) => (double)node["accuracy"]!["mean"]!;
        Assert.True(Accuracy(json["pretraining"]!) > 0.85, "pretraining");
        Assert.True(Accuracy(methods["Base (frozen)"]) < 0.25, "frozen base on turned digits");
        Assert.True(Accuracy(methods["Full fine-tuning"]) > 0.85, "full fine-tuning");
        Assert.True(Accuracy(methods["LoRA r=4"]) > 0.5, "LoRA");
        Assert.True(Accuracy(methods["DoRA r=4"]) > 0.5, "DoRA");
        Assert.Equal(PngSignature, File.ReadAllBytes(_dir.File("loss_curves.png")).Take(8));
        // 8,000 images in batches of 64: 125 steps of pretraining and 125 (one epoch) for each trained method.
        Assert.Equal(1 + 125 + 3 * 125, File.ReadAllLines(_dir.File("losses.csv")).Length);

        var adapters = _dir.File("adapters");
        var dora = SafetensorsReader.Read(Path.Combine(adapters, "dora-r4", "adapter_model.safetensors"));
        Assert.Equal(new long[] { 1, 8, 1, 1 }, dora["base_model.model.conv1.lora_magnitude_vector"].shape);
        Assert.Equal(new long[] { 1, 16, 1, 1 }, dora["base_model.model.conv2.lora_magnitude_vector"].shape);
        Assert.Equal(new long[] { 4, 8, 3, 3 }, dora["base_model.model.conv2.lora_A.weight"].shape);
        Assert.Equal(new long[] { 10 }, dora["base_model.model.fc.lora_magnitude_vector"].shape);
        var lora = SafetensorsReader.Read(Path.Combine(adapters, "lora-r4", "adapter_model.safetensors"));
        Assert.Equal(new long[] { 16, 4, 1, 1 }, lora["base_model.model.conv2.lora_B.weight"].shape);
        Assert.DoesNotContain(lora.Keys, k => k.EndsWith("lora_magnitude_vector", StringComparison.Ordinal));
    }

    [Fact]
    public void Compare_runs_lora_and_dora_at_each_rank_and_draws_the_plot()
    {
        var (code, error, _) = CliRunner.Run("compare", "--ranks", "1,2", "--epochs", "1", "--task", "continue", "--out", _dir.Path);
        Assert.True(code == 0, error);

        var json = JsonNode.Parse(File.ReadAllText(_dir.File("results.json")))!;
        Assert.Equal("compare", (string)json["command"]!);
        var methods = json["methods"]!.AsArray();
        Assert.Equal(new[] { "Base (frozen)", "Full fine-tuning", "LoRA r=1", "DoRA r=1", "LoRA r=2", "DoRA r=2" },
            methods.Select(m => (string)m!["label"]!));
        // alpha defaults to 2·r.
        Assert.Equal(new double?[] { null, null, 2, 2, 4, 4 }, methods.Select(m => (double?)m!["alpha"]));
        Assert.All(methods, m => Assert.Equal(BundledTestImages, (int)m!["evaluated_images"]!));
        Assert.Equal(PngSignature, File.ReadAllBytes(_dir.File("accuracy_vs_rank.png")).Take(8));
    }
}
