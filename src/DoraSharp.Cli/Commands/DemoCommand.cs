using System.CommandLine;
using DoraSharp.Cli.Rendering;
using DoraSharp.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora demo`: the worked example. Pretrain the MLP (or with --model cnn the CNN), copy it, and compare the frozen
/// base, full fine-tuning, LoRA and DoRA on the whole test split. (The one-layer walkthrough lives on as examples/lora_and_dora.ipynb.)
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var options = new ExperimentOptions(Path.Combine("runs", "demo"));
        var rank = ExperimentOptions.Number("--r", 4, 1, "Adapter rank r of LoRA and DoRA.");
        var alpha = ExperimentOptions.Positive("--alpha", 8, "lora_alpha of LoRA and DoRA (scaling = alpha / r).");
        var resume = new ResumeOptions();
        var command = new Command("demo",
            "Pretrain an MLP (or a small CNN: --model cnn) on MNIST, then fine-tune copies with LoRA, DoRA and full fine-tuning and compare them on the whole test split " +
            "(default task: digits turned 90°). Prints a progress bar per phase and a table; writes results.json, losses.csv, loss_curves.png and the LoRA/DoRA adapters (PEFT format, first seed) to --out.");
        options.AddTo(command);
        command.Options.Add(rank);
        command.Options.Add(alpha);
        resume.AddTo(command);
        command.SetAction(p => ExperimentRun.Execute(p, options, "demo",
            FineTuneExperiment.DemoArms(p.GetValue(rank), p.GetValue(alpha)),
            outDir => trained =>
            {
                // The first seed's adapters, in PEFT's format: Python loads them onto the same model with
                // PeftModel.from_pretrained (the Python class is named MLP in docs/adapter-format.md; CNN for the CNN).
                if (trained.SeedIndex != 0 || trained.Adapters is not { } adapters) return;
                adapters.SaveAdapter(Path.Combine(outDir, "adapters", trained.Arm.Slug),
                    new DoraSharp.IO.AdapterSaveOptions { AutoMapping = new DoraSharp.IO.PeftAutoMapping(trained.Model is MnistCnn ? "CNN" : "MLP", "__main__") });
            },
            (result, outDir) =>
            {
                AnsiConsole.Write(ResultTables.Methods(result));
                foreach (var line in ResultTables.MethodNotes(result)) AnsiConsole.WriteLine(line);
                PlotFonts.Configure();
                var plot = Path.Combine(outDir, "loss_curves.png");
                LossPlot.Save(plot, result);
                var adapterDirs = Directory.Exists(Path.Combine(outDir, "adapters"))
                    ? Directory.GetDirectories(Path.Combine(outDir, "adapters")).Order()
                    : Enumerable.Empty<string>();
                return [plot, .. adapterDirs];
            },
            resume.Choice(p)));
        return command;
    }
}
