using System.CommandLine;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DoraSharp.Cli.Rendering;
using DoraSharp.Examples.Experiments;
using DoraSharp.IO;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora demo`: the worked example. Pretrain the MLP (or with --model cnn the CNN), copy it, and compare the frozen
/// base, full fine-tuning, LoRA and DoRA on the whole test split. (The one-layer walkthrough lives on as examples/lora_and_dora.ipynb.)
/// </summary>
internal static class DemoCommand
{
    /// <summary>Largest adapter rank of demo, compare and analyze (far above every layer's width of the default models).</summary>
    public const int MaxRank = 1024;

    /// <summary>Largest lora_alpha of demo, compare and analyze: scalings alpha / r up to 10^4 (PEFT's examples use 1 to 4).</summary>
    public const double MaxAlpha = 10_000;

    public static Command Create()
    {
        var options = new ExperimentOptions(Path.Combine("runs", "demo"));
        var rank = OptionRules.Whole("--r", 4, 1, MaxRank, "Adapter rank r of LoRA and DoRA.");
        var alpha = OptionRules.Real("--alpha", 8, 0, aboveMin: true, MaxAlpha, "lora_alpha of LoRA and DoRA (scaling = alpha / r).");
        var resume = new ResumeOptions();
        var command = new Command("demo",
            "Pretrain an MLP (or a small CNN: --model cnn) on MNIST, then fine-tune copies with LoRA, DoRA and full fine-tuning and compare them on the whole test split " +
            "(default task: digits turned 90°). Prints a progress bar per phase and a table; writes results.json, losses.csv, loss_curves.png, the LoRA/DoRA adapters (PEFT format, first seed) and the pretrained base they were trained on (base/model.safetensors) to --out, replacing an earlier run's.");
        options.AddTo(command);
        command.Options.Add(rank);
        command.Options.Add(alpha);
        resume.AddTo(command);
        command.SetAction(p =>
        {
            var arms = FineTuneExperiment.DemoArms(p.GetValue(rank), p.GetValue(alpha));
            return ExperimentRun.Execute(p, options, "demo", arms, (trained, outputs) => SavePhase(trained, outputs, arms.First(a => a.IsAdapter)),
                (result, outDir) =>
                {
                    AnsiConsole.Write(ResultTables.Methods(result));
                    foreach (var line in ResultTables.MethodNotes(result)) AnsiConsole.WriteLine(line);
                    PlotFonts.Configure();
                    var plot = Path.Combine(outDir, "loss_curves.png");
                    LossPlot.Save(plot, result);
                    return [plot];
                },
                resume.Choice(p));
        });
        return command;
    }

    /// <summary>Test hook: called with each model of the first seed after its files are saved (e.g. to compute its logits).</summary>
    internal static readonly AsyncLocal<Action<TrainedModel>?> SavedHook = new();

    /// <summary>
    /// Saves what --out gets of a trained arm of the first seed into <paramref name="outputs"/> (published into --out when the
    /// run finishes): the adapter in PEFT's format under adapters/&lt;arm&gt;, and with the first adapter arm the base
    /// weights it was trained on under base/.
    /// </summary>
    private static void SavePhase(TrainedModel trained, string outputs, FineTuneArm firstAdapterArm)
    {
        if (trained.SeedIndex != 0 || trained.Adapters is not { } adapters) return;
        // Python loads the adapter onto the same model with PeftModel.from_pretrained (the Python classes are named
        // MLP and CNN in docs/python-interop.md).
        var pythonClass = trained.Model is MnistCnn ? "CNN" : "MLP";
        adapters.SaveAdapter(Path.Combine(outputs, "adapters", trained.Arm.Slug),
            new AdapterSaveOptions { AutoMapping = new PeftAutoMapping(pythonClass, "__main__") });
        if (trained.Arm == firstAdapterArm)
        {
            // The adapters only train their own tensors, so every adapted model of a seed holds the pretrained weights
            // unchanged under the base names: this is the model the adapters were trained on (and the frozen arm's).
            var folder = Path.Combine(outputs, "base");
            Directory.CreateDirectory(folder);
            BaseWeightsFile.Save(trained.Model, Path.Combine(folder, BaseModelFile));
            RunOutputs.WriteDurably(Path.Combine(folder, BaseConfigFile), Encoding.UTF8.GetBytes(BaseConfig(trained.Model, pythonClass).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n"));
        }
        SavedHook.Value?.Invoke(trained);
    }

    /// <summary>The base weights in base/: PyTorch state-dict names, safetensors (what safetensors.torch.save_file writes).</summary>
    public const string BaseModelFile = "model.safetensors";

    /// <summary>The base model's architecture in base/, enough to build it again (docs/python-interop.md builds it in PyTorch).</summary>
    public const string BaseConfigFile = "config.json";

    private static JsonObject BaseConfig(MnistClassifier model, string pythonClass) => model switch
    {
        MnistMlp mlp => new JsonObject
        {
            ["model_kind"] = "mlp",
            ["python_class"] = pythonClass,
            ["inputs"] = mlp.Inputs,
            ["hidden1"] = mlp.Hidden1,
            ["hidden2"] = mlp.Hidden2,
            ["classes"] = mlp.Classes,
            ["architecture"] = $"layers = nn.Sequential(nn.Linear({mlp.Inputs}, {mlp.Hidden1}), nn.ReLU(), nn.Linear({mlp.Hidden1}, {mlp.Hidden2}), nn.ReLU(), nn.Linear({mlp.Hidden2}, {mlp.Classes}))",
            ["input"] = "float32 (N, 784): the 28x28 image row by row, each pixel byte / 255",
        },
        MnistCnn cnn => new JsonObject
        {
            ["model_kind"] = "cnn",
            ["python_class"] = pythonClass,
            ["channels1"] = cnn.Channels1,
            ["channels2"] = cnn.Channels2,
            ["classes"] = cnn.Classes,
            ["architecture"] = $"conv1 = nn.Conv2d(1, {cnn.Channels1}, 3, padding=1), conv2 = nn.Conv2d({cnn.Channels1}, {cnn.Channels2}, 3, padding=1), " +
                               $"fc = nn.Linear({cnn.FlatFeatures}, {cnn.Classes}); x.view(-1, 1, 28, 28) → conv1 → ReLU → max_pool2d 2 → conv2 → ReLU → max_pool2d 2 → flatten → fc",
            ["input"] = "float32 (N, 784): the 28x28 image row by row, each pixel byte / 255",
        },
        _ => throw new ArgumentOutOfRangeException(nameof(model), model.GetType().Name, "expected MnistMlp or MnistCnn"),
    };
}
