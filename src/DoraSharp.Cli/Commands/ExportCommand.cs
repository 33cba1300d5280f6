using System.CommandLine;
using System.Globalization;
using DoraSharp.MiniLM.Export;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora export`: writes a `dora train` run (--run), or a bare PEFT adapter for all-MiniLM-L6-v2 (--adapter, exported
/// as an embedding model), as a folder ONNX Runtime runs without TorchSharp (the adapter merged, the head or the
/// pooling in the graph) and prints the check of ONNX Runtime against TorchSharp. The work is
/// <see cref="RunExporter"/>'s; this command parses and renders.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var run = new Option<string>("--run") { Description = "Run folder written by `dora train` (classification or similarity). Give this or --adapter.", HelpName = "DIR" };
        var adapter = new Option<string>("--adapter")
        {
            Description = "Instead of --run: a PEFT LoRA/DoRA adapter folder (adapter_config.json, adapter_model.safetensors) for all-MiniLM-L6-v2's encoder, " +
                "keys on Hugging Face's BertModel (as a similarity run's adapter/ or PEFT on AutoModel saves them). Merged into the shipped MiniLM and exported " +
                "as an embedding model (mean pooling, L2 normalisation): a bare adapter carries no labels, so no classification head. Checked on fixed texts.",
            HelpName = "DIR",
        };
        var output = new Option<string>("--out") { Description = "Folder to write (model.onnx, vocab.txt, tokenizer_config.json, model.json, export-report.json); must not exist unless --force.", HelpName = "DIR", Required = true };
        var force = new Option<bool>("--force") { Description = "Replace an existing --out folder, once the new export has passed its check." };
        var checkTexts = OptionRules.Whole("--check-texts", 64, 1, 100_000, "Validation texts of the run compared between ONNX Runtime and TorchSharp (the first ones, plus a few fixed tokenizer probes); --run only.");
        var threads = OptionRules.Whole("--threads", 1, 1, 256, "Threads for libtorch and ONNX Runtime during the check.");
        var command = new Command("export", "Export a `dora train` run (--run), or a PEFT adapter for all-MiniLM-L6-v2 as an embedding model (--adapter), as ONNX " +
            "(adapter merged, head or pooling in the graph) for ONNX Runtime, checked against TorchSharp; see docs/deploy.md.")
            { run, adapter, output, force, checkTexts, threads };
        command.SetAction(p =>
        {
            // Checked before any work and before the thread count changes: the two forms exclude each other.
            var (runFolder, adapterFolder) = (p.GetValue(run), p.GetValue(adapter));
            if ((runFolder is null) == (adapterFolder is null))
                throw new UsageException(runFolder is null
                    ? "dora export: give --run DIR (a `dora train` run folder) or --adapter DIR (a PEFT adapter folder for all-MiniLM-L6-v2)."
                    : "dora export: --run and --adapter exclude each other; give one (--adapter exports an embedding model from a bare adapter).");
            int previous = TorchSharp.torch.get_num_threads();
            TorchSharp.torch.set_num_threads(p.GetValue(threads));
            try
            {
                ExportReport report = null!;
                var options = new ExportOptions
                {
                    Run = runFolder,
                    Adapter = adapterFolder,
                    Out = p.GetValue(output)!,
                    Force = p.GetValue(force),
                    CheckTexts = p.GetValue(checkTexts),
                    OnnxThreads = p.GetValue(threads),
                    CreatedBy = $"dora export, DoraSharp {typeof(ExportCommand).Assembly.GetName().Version?.ToString(3) ?? "?"}, {DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture)}",
                };
                AnsiConsole.Status().Start("merging, exporting and checking against TorchSharp", _ => report = RunExporter.Export(options));
                Render(report, p.InvocationConfiguration.Output);
                return 0;
            }
            finally
            {
                TorchSharp.torch.set_num_threads(previous);
            }
        });
        return command;
    }

    private static void Render(ExportReport report, TextWriter output)
    {
        var table = new Table().Title($"[bold]dora export[/]: {Markup.Escape(report.Folder)}").HideHeaders().AddColumns("what", "value");
        table.AddRow("model", Markup.Escape($"{report.Kind} ({report.Method}), output '{report.Output}'"));
        table.AddRow("weights", Markup.Escape($"{report.ChangedInitializers} of the graph's {report.WeightInitializers} weight tensors changed from the pretrained ones"));
        table.AddRow("merge", Markup.Escape($"max |merged − unmerged| {report.MergeMaxAbsDifference:0.00E+0} (TorchSharp)"));
        table.AddRow("check", $"[green]max |ONNX Runtime − TorchSharp| {report.MaxAbsDifference:0.00E+0}[/] ≤ {report.Tolerance:G3} over {report.Texts} texts"
            + (report.Kind == "classification" ? $", {report.ArgMaxDisagreements} label disagreement(s)" : ""));
        AnsiConsole.Write(table);
        // Plain lines on the command's output (scripts and tests read them; the table above is for people).
        output.WriteLine($"max abs difference ONNX Runtime vs TorchSharp: {report.MaxAbsDifference.ToString("R", CultureInfo.InvariantCulture)} (written to {Path.Combine(report.Folder, RunExporter.ReportFile)})");
        output.WriteLine($"Use it: dora predict --engine onnx --model {report.Folder} --data FILE   (or from C#: docs/deploy.md)");
    }
}
