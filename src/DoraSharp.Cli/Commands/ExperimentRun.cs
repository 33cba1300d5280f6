using System.CommandLine;
using System.Globalization;
using DoraSharp.Cli.Rendering;
using DoraSharp.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// What `dora demo` and `dora compare` do alike: load the data, check the output folder, run the experiment
/// under progress bars with checkpoints (Ctrl+C or SIGTERM stops it cleanly; --resume continues it), write results.json
/// and losses.csv, and list the files.
/// </summary>
internal static class ExperimentRun
{
    /// <param name="parse">The parsed command line.</param>
    /// <param name="options">The shared options.</param>
    /// <param name="command">"demo" or "compare", recorded in results.json.</param>
    /// <param name="arms">The arms to run.</param>
    /// <param name="onTrained">Called with each trained model (e.g. to save adapters); may be null.</param>
    /// <param name="render">Prints the table and writes the command's plots into the output folder; returns the files it wrote.</param>
    /// <param name="checkpointing">Where and how to checkpoint, and whether to resume (see <see cref="ResumeOptions"/>).</param>
    public static int Execute(ParseResult parse, ExperimentOptions options, string command, IReadOnlyList<FineTuneArm> arms,
        Func<string, Action<TrainedModel>>? onTrained, Func<ExperimentResult, string, IEnumerable<string>> render,
        CheckpointChoice checkpointing)
    {
        var settings = options.Settings(parse);
        FineTuneExperiment.Validate(settings, arms);
        // Data first, then the output folder: a bad --data-dir must not leave an empty folder behind.
        using var data = ExperimentData.Load(parse.GetValue(options.Dataset)!, parse.GetValue(options.DataDir), settings.Task);
        var outDir = OutputFolder.Prepare("--out", parse.GetValue(options.Out)!);
        var dir = Path.GetFullPath(checkpointing.Directory ?? Path.Combine(outDir, "checkpoints"));
        if (!checkpointing.Resume && ExperimentCheckpoints.HoldsRun(dir))
            throw new UsageException($"{dir} holds the checkpoints of an unfinished run: add --resume to continue it, or delete that folder to start over.");
        if (checkpointing.Resume && !ExperimentCheckpoints.HoldsRun(dir))
            throw new UsageException($"--resume: {dir} holds no checkpoints to resume from (a finished run deletes its checkpoints; its results are in {outDir}).");
        var checkpoints = new ExperimentCheckpoints(
            new DoraSharp.Training.CheckpointOptions { Directory = dir, EverySteps = checkpointing.Every, Keep = checkpointing.Keep },
            new Relay<string>(w => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(w)}[/]")));
        var threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(parse.GetValue(options.Threads));
        try
        {
            return Run(settings, data, outDir, command, arms, onTrained, render, checkpoints);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);   // the process-wide setting is ours only while we run
        }
    }

    private static int Run(ExperimentSettings settings, ExperimentData data, string outDir, string command, IReadOnlyList<FineTuneArm> arms,
        Func<string, Action<TrainedModel>>? onTrained, Func<ExperimentResult, string, IEnumerable<string>> render, ExperimentCheckpoints checkpoints)
    {
        // Pipes and files have no width; Spectre would assume 80 columns and wrap the tables.
        if (Console.IsOutputRedirected && AnsiConsole.Profile.Width < 120) AnsiConsole.Profile.Width = 120;
        AnsiConsole.MarkupLine(Markup.Escape(string.Create(CultureInfo.InvariantCulture,
            $"{settings.ModelDescription} on {data.Dataset}: {data.PretrainTrain.Count:N0} train / {data.PretrainTest.Count:N0} test images ({data.PretrainTest.Source}).")));
        AnsiConsole.MarkupLine(Markup.Escape(data.Task == ExperimentTask.Shift
            ? $"Task shift: pretrain {Epochs(settings.PretrainEpochs)} on the images as they are, then fine-tune {Epochs(settings.FineTuneEpochs)} and test on the same images turned 90°."
            : $"Task continue (the original recipe): pretrain {Epochs(settings.PretrainEpochs)}, then fine-tune {Epochs(settings.FineTuneEpochs)} more on the same data."));

        using var stop = new StopSignals();
        ExperimentResult result;
        try
        {
            result = ProgressDisplay.Run(progress => FineTuneExperiment.Run(data, settings, arms, progress, onTrained?.Invoke(outDir), stop.Token, checkpoints));
        }
        catch (OperationCanceledException) when (stop.Stopped)
        {
            Console.Error.WriteLine($"dora: stopped ({stop.Name}); every finished step is checkpointed in {checkpoints.Options.Directory}. " +
                                    "To continue, run the same command again with --resume.");
            return stop.ExitCode;
        }

        // The numbers first: they must be saved even if drawing a plot fails.
        var json = Path.Combine(outDir, "results.json");
        ResultsFile.Write(json, result, command);
        var losses = Path.Combine(outDir, "losses.csv");
        ResultsFile.WriteLosses(losses, result);
        checkpoints.Delete();   // the results are saved: the run is finished and nothing is left to resume
        var files = new List<string> { json, losses };
        files.InsertRange(0, render(result, outDir));
        if (PlotFonts.Configure() is { } warning) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape("Plots: " + warning)}[/]");
        AnsiConsole.MarkupLine(Markup.Escape("Wrote " + string.Join(", ", files.Select(Shown))));
        return 0;
    }

    /// <summary>A path relative to the current folder when it lies inside it, else in full.</summary>
    private static string Shown(string path)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return relative.StartsWith("..", StringComparison.Ordinal) || Path.IsPathRooted(relative) ? path : relative;
    }

    public static string Epochs(int n) => n == 1 ? "1 epoch" : $"{n} epochs";
}

/// <summary>The checkpoint options of a command line: the directory (null: &lt;out&gt;/checkpoints), steps between saves (0: epoch ends), how many to keep, and whether to resume.</summary>
internal sealed record CheckpointChoice(string? Directory, int Every, int Keep, bool Resume);
