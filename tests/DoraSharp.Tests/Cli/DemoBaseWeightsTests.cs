using System.Text.Json.Nodes;
using DoraSharp.Cli.Commands;
using DoraSharp.Examples.Experiments;
using DoraSharp.IO;
using DoraSharp.Tests.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora demo` saves the pretrained base beside the adapters (base/model.safetensors with PyTorch's names, base/config.json
/// with the sizes), so the fine-tuned models can be rebuilt elsewhere: a fresh model built from the config, loaded with
/// the base weights and an adapter, gives the logits the run's own model gave (what docs/python-interop.md does in PyTorch).
/// </summary>
[Collection(ProcessWideState.Name)]
public sealed class DemoBaseWeightsTests : IDisposable
{
    private const int Images = 64;

    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Base_weights_and_adapter_rebuild_the_runs_models_logits()
    {
        using var data = ExperimentData.Load("mnist", null, ExperimentTask.Shift);
        using var images = data.FineTuneTest.Images[..Images].clone();
        var inRun = new Dictionary<string, float[]>();
        DemoCommand.SavedHook.Value = trained => inRun[trained.Arm.Slug] = Logits(trained.Model, images);
        try
        {
            // Widths other than the defaults: the config, not an assumption, must say how to build the model.
            var (code, error, _) = CliRunner.Run("demo", "--epochs", "1", "--hidden1", "24", "--hidden2", "16", "--out", _dir.Path);
            Assert.True(code == 0, error);
        }
        finally
        {
            DemoCommand.SavedHook.Value = null;
        }
        Assert.Equal(["dora-r4", "lora-r4"], inRun.Keys.Order(StringComparer.Ordinal));

        var config = JsonNode.Parse(File.ReadAllText(_dir.File(Path.Combine("base", DemoCommand.BaseConfigFile))))!;
        Assert.Equal("mlp", (string)config["model_kind"]!);
        var weights = _dir.File(Path.Combine("base", DemoCommand.BaseModelFile));
        var keys = SafetensorsReader.Read(weights);
        try
        {
            // PyTorch's state-dict names of nn.Sequential in a field `layers`, nothing of PEFT's.
            Assert.Equal(["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight", "layers.4.bias", "layers.4.weight"], keys.Keys.Order(StringComparer.Ordinal));
            Assert.Equal([24L, 784L], keys["layers.0.weight"].shape);
        }
        finally
        {
            foreach (var t in keys.Values) t.Dispose();
        }

        foreach (var (slug, expected) in inRun)
        {
            using var model = new MnistMlp((int)config["inputs"]!, (int)config["hidden1"]!, (int)config["hidden2"]!, (int)config["classes"]!);
            BaseWeightsFile.Load(model, weights);
            LoraModel.LoadAdapter(model, _dir.File(Path.Combine("adapters", slug)));
            var reloaded = Logits(model, images);
            // The same operations on the same values: equal up to a rounding or two, and far from any other model's logits.
            var scale = expected.Max(MathF.Abs);
            var worst = expected.Zip(reloaded, (a, b) => MathF.Abs(a - b)).Max();
            Assert.True(worst <= 1e-5f * scale, $"{slug}: max |logit difference| {worst} (largest logit {scale})");
        }
    }

    private static float[] Logits(nn.Module<Tensor, Tensor> model, Tensor images)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        model.eval();
        return model.call(images).data<float>().ToArray();
    }
}
