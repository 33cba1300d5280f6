using System.CommandLine;
using System.Globalization;
using DoraSharp.Cli.Rendering;
using DoraSharp.Examples.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora analyze`: the DoRA paper's magnitude/direction analysis (§2.2, Figure 2) on the worked example's
/// task: FT, LoRA and DoRA, ΔD and ΔM of every adapted layer at evenly spaced checkpoints, a scatter plot
/// per method, every point as CSV and JSON, and the fitted slope and Pearson r per method.
/// </summary>
internal static class AnalyzeCommand
{
    public static Command Create()
    {
        var options = new ExperimentOptions(Path.Combine("runs", "analyze"));
        var rank = OptionRules.Whole("--r", 4, 1, DemoCommand.MaxRank, "Adapter rank of the LoRA and DoRA runs.");
        var alpha = OptionRules.Real("--alpha", 8, 0, aboveMin: true, DemoCommand.MaxAlpha, "lora_alpha of the LoRA and DoRA runs.");
        var checkpoints = OptionRules.Whole("--checkpoints", 4, 1, 100, "Checkpoints per method, evenly spaced over fine-tuning (the paper uses 4).");
        var command = new Command("analyze",
            "Magnitude/direction analysis of FT, LoRA and DoRA (DoRA paper §2.2, Figure 2): writes a scatter plot per method, " +
            "decomposition.csv and decomposition.json to --out, and prints slope and Pearson r per method. Uses the first seed.");
        options.AddTo(command);
        command.Options.Add(rank);
        command.Options.Add(alpha);
        command.Options.Add(checkpoints);
        command.SetAction(p => Run(p, options, p.GetValue(rank), p.GetValue(alpha), p.GetValue(checkpoints)));
        return command;
    }

    private static int Run(ParseResult parse, ExperimentOptions options, int rank, double alpha, int checkpoints)
    {
        var settings = options.Settings(parse);
        FineTuneExperiment.Validate(settings, [FineTuneArm.Full, FineTuneArm.Lora(rank, alpha), FineTuneArm.Dora(rank, alpha)]);
        using var data = ExperimentData.Load(parse.GetValue(options.Dataset)!, parse.GetValue(options.DataDir), settings.Task);
        var outDir = OutputFolder.Prepare("--out", parse.GetValue(options.Out)!);
        using var outLock = FolderLock.Acquire("--out", outDir);
        // The outputs are staged and swapped in together (RunOutputs): never a mix of this run's and an older run's.
        var outputs = new RunOutputs(outDir, ["decomposition.csv", "decomposition.json", .. DecompositionResult.Methods.Select(PlotName)]);
        outputs.Prepare();
        TorchSharp.torch.set_num_threads(parse.GetValue(options.Threads));
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < 120) AnsiConsole.Profile.Width = 120;

        DecompositionResult result;
        using (var stop = new StopSignals())
        {
            try
            {
                result = ProgressDisplay.Run(progress => DecompositionExperiment.Run(data, settings, rank, alpha, checkpoints, progress, stop.Token));
            }
            catch (OperationCanceledException) when (stop.Stopped)
            {
                Console.Error.WriteLine($"dora: stopped ({stop.Name}); nothing was written for the unfinished run.");
                return stop.ExitCode;
            }
        }

        var table = new Table().Title(Markup.Escape($"ΔM against ΔD per method ({result.Data.Dataset}, task {settings.Task.ToString().ToLowerInvariant()}, r = {rank}, {checkpoints} checkpoints × {settings.TargetModules.Count} layers)"))
            .AddColumns("method", "points", "slope ΔM/ΔD", "Pearson r", "ΔD range", "ΔM range");
        foreach (var method in DecompositionResult.Methods)
        {
            var fit = result.Fit(method);
            var pts = result.Points.Where(p => p.Method == method).ToList();
            table.AddRow(method, fit.Count.ToString(CultureInfo.InvariantCulture), F(fit.Slope, "G3"), F(fit.Pearson, "F3"),
                $"{F(pts.Min(p => p.DeltaDirection), "G3")} – {F(pts.Max(p => p.DeltaDirection), "G3")}",
                $"{F(pts.Min(p => p.DeltaMagnitude), "G3")} – {F(pts.Max(p => p.DeltaMagnitude), "G3")}");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine(Markup.Escape("The paper (Figure 2) reports a negative correlation for FT and DoRA and a positive one for LoRA; " +
                                             "read the r column above for what this run shows."));

        var staging = outputs.Stage();
        try
        {
            DecompositionFile.WriteCsv(Path.Combine(staging, "decomposition.csv"), result);
            DecompositionFile.WriteJson(Path.Combine(staging, "decomposition.json"), result);
            if (PlotFonts.Configure() is { } warning) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape("Plots: " + warning)}[/]");
            foreach (var method in DecompositionResult.Methods) DecompositionPlot.Save(Path.Combine(staging, PlotName(method)), result, method);
            RunOutputs.FaultPoint("render");
            outputs.Commit(staging);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RunOutputs.Discard(staging);
            throw new UsageException($"could not write the outputs into {outDir} ({e.Message.ReplaceLineEndings(" ").TrimEnd('.')}); the previous outputs there are unchanged.");
        }
        catch
        {
            RunOutputs.Discard(staging);
            throw;
        }
        string[] files = ["decomposition.csv", "decomposition.json", .. DecompositionResult.Methods.Select(PlotName)];
        AnsiConsole.MarkupLine(Markup.Escape("Wrote " + string.Join(", ", files.Select(f => Path.Combine(outDir, f)))));
        return 0;
    }

    private static string PlotName(string method) => $"decomposition_{method.ToLowerInvariant()}.png";

    private static string F(double v, string format) => double.IsFinite(v) ? v.ToString(format, CultureInfo.InvariantCulture) : "n/a";
}
