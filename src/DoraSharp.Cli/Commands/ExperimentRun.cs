using System.CommandLine;
using System.Globalization;
using DoraSharp.Cli.Rendering;
using DoraSharp.Examples.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// What `dora demo` and `dora compare` do alike: check every option, the output and checkpoint folders and lock both,
/// load the data, run the experiment under progress bars with checkpoints (Ctrl+C or SIGTERM stops it cleanly;
/// --resume continues it, also after a kill), then publish results.json, losses.csv, the plots and what each phase
/// saved (adapters, base weights) into --out as one swap (<see cref="RunOutputs"/>), and only then delete the checkpoints.
/// </summary>
/// <remarks>
/// What a phase saves (an adapter, say) goes first into its own checkpoint folder, before the phase is recorded as
/// finished (<see cref="TrainedModel.PhaseDirectory"/>), so a run killed at any moment and resumed publishes exactly
/// what an uninterrupted run does; nothing reaches --out before the whole run is done.
/// </remarks>
internal static class ExperimentRun
{
    /// <summary>The entries of --out that demo and compare own: a run replaces all of them, so none of an older run survives beside its results.</summary>
    public static readonly IReadOnlyList<string> OwnedOutputs = ["results.json", "losses.csv", "loss_curves.png", "accuracy_vs_rank.png", "adapters", "base"];

    /// <summary>The folder in a phase's checkpoint folder whose tree is published into --out when the run finishes.</summary>
    private const string PhaseOutputsFolder = "outputs";

    /// <param name="parse">The parsed command line.</param>
    /// <param name="options">The shared options.</param>
    /// <param name="command">"demo" or "compare", recorded in results.json.</param>
    /// <param name="arms">The arms to run.</param>
    /// <param name="onTrained">
    /// Called with each trained model and an empty folder: what it writes there, laid out as in --out (e.g.
    /// adapters/lora-r4/…), is kept with the phase's checkpoint and published into --out when the run finishes. May be null.
    /// </param>
    /// <param name="render">Prints the table and writes the command's plots into the folder it is given (the staged --out); returns the files it wrote.</param>
    /// <param name="checkpointing">Where and how to checkpoint, and whether to resume (see <see cref="ResumeOptions"/>).</param>
    public static int Execute(ParseResult parse, ExperimentOptions options, string command, IReadOnlyList<FineTuneArm> arms,
        Action<TrainedModel, string>? onTrained, Func<ExperimentResult, string, IEnumerable<string>> render,
        CheckpointChoice checkpointing)
    {
        var settings = options.Settings(parse);
        FineTuneExperiment.Validate(settings, arms);
        // Data first, then the output folder: a bad --data-dir must not leave an empty folder behind.
        using var data = ExperimentData.Load(parse.GetValue(options.Dataset)!, parse.GetValue(options.DataDir), settings.Task);
        var outDir = OutputFolder.Prepare("--out", parse.GetValue(options.Out)!);
        using var outLock = FolderLock.Acquire("--out", outDir);
        // Every folder the run writes is proven writable now, not at the first checkpoint an epoch later.
        var dir = OutputFolder.Prepare("--checkpoint-dir", checkpointing.Directory ?? Path.Combine(outDir, "checkpoints"));
        using var checkpointLock = string.Equals(Path.TrimEndingDirectorySeparator(dir), Path.TrimEndingDirectorySeparator(outDir), StringComparison.Ordinal)
            ? null : FolderLock.Acquire("--checkpoint-dir", dir);
        var outputs = new RunOutputs(outDir, OwnedOutputs);
        outputs.Prepare();
        if (!checkpointing.Resume && ExperimentCheckpoints.HoldsRun(dir))
            throw new UsageException($"{dir} holds the checkpoints of an unfinished run: add --resume to continue it, or delete that folder to start over.");
        if (checkpointing.Resume && !ExperimentCheckpoints.HoldsRun(dir))
            throw new UsageException($"--resume: {dir} holds no checkpoints to resume from (a finished run deletes its checkpoints; its results are in {outDir}).");
        var checkpoints = new ExperimentCheckpoints(
            new DoraSharp.Training.CheckpointOptions { Directory = dir, EverySteps = checkpointing.Every, Keep = checkpointing.Keep, PauseBetweenFiles = CheckpointFaultDelay.FromEnvironment() },
            new Relay<string>(w => AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(w)}[/]")));
        var threads = TorchSharp.torch.get_num_threads();
        TorchSharp.torch.set_num_threads(parse.GetValue(options.Threads));
        try
        {
            return Run(settings, data, outDir, command, arms, onTrained, render, checkpoints, outputs);
        }
        finally
        {
            TorchSharp.torch.set_num_threads(threads);   // the process-wide setting is ours only while we run
        }
    }

    private static int Run(ExperimentSettings settings, ExperimentData data, string outDir, string command, IReadOnlyList<FineTuneArm> arms,
        Action<TrainedModel, string>? onTrained, Func<ExperimentResult, string, IEnumerable<string>> render, ExperimentCheckpoints checkpoints,
        RunOutputs outputs)
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
            Action<TrainedModel>? save = onTrained is null ? null : trained => onTrained(trained, FreshPhaseOutputs(trained));
            result = ProgressDisplay.Run(progress => FineTuneExperiment.Run(data, settings, arms, progress, save, stop.Token, checkpoints));
        }
        catch (OperationCanceledException) when (stop.Stopped)
        {
            Console.Error.WriteLine($"dora: stopped ({stop.Name}); every finished step is checkpointed in {checkpoints.Options.Directory}. " +
                                    "To continue, run the same command again with --resume.");
            return stop.ExitCode;
        }

        var staging = outputs.Stage();
        var files = new List<string>();
        try
        {
            // What the phases saved (this run's or, for phases finished before a resume, an earlier attempt's: the same bytes).
            foreach (var seed in settings.SeedValues)
            {
                foreach (var phase in arms.Select(a => a.Slug))
                {
                    var saved = Path.Combine(checkpoints.PhaseDirectory(seed, phase), PhaseOutputsFolder);
                    if (!Directory.Exists(saved)) continue;
                    RunOutputs.CopyTree(saved, staging);
                    files.AddRange(Listed(saved).Select(p => Path.Combine(outDir, Path.GetRelativePath(saved, p))));   // e.g. adapters/lora-r4, base
                }
            }
            ResultsFile.Write(Path.Combine(staging, "results.json"), result, command);
            ResultsFile.WriteLosses(Path.Combine(staging, "losses.csv"), result);
            RunOutputs.FaultPoint("render");
            files.InsertRange(0, render(result, staging).Select(p => Path.Combine(outDir, Path.GetRelativePath(staging, p))));
            files.AddRange([Path.Combine(outDir, "results.json"), Path.Combine(outDir, "losses.csv")]);
            outputs.Commit(staging);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            RunOutputs.Discard(staging);
            throw new UsageException($"could not write the outputs into {outDir} ({e.Message.ReplaceLineEndings(" ").TrimEnd('.')}); " +
                                     $"the previous outputs there are unchanged and the finished training is kept in {checkpoints.Options.Directory}: " +
                                     "fix the cause and run the same command again with --resume to write them.");
        }
        catch
        {
            RunOutputs.Discard(staging);
            throw;
        }
        checkpoints.Delete();   // every output is durable in --out: the run is finished and nothing is left to resume
        if (PlotFonts.Configure() is { } warning) AnsiConsole.MarkupLine($"[yellow]{Markup.Escape("Plots: " + warning)}[/]");
        AnsiConsole.MarkupLine(Markup.Escape("Wrote " + string.Join(", ", files.Select(Shown))));
        return 0;
    }

    /// <summary>The phase's outputs folder, emptied: an attempt killed while saving may have left part of its files there.</summary>
    private static string FreshPhaseOutputs(TrainedModel trained)
    {
        var dir = Path.Combine(trained.PhaseDirectory ?? throw new InvalidOperationException("the experiment runs with checkpoints"), PhaseOutputsFolder);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>What to list of a phase's outputs: each folder of folders is listed by its children (adapters/lora-r4), anything else by itself (base).</summary>
    private static IEnumerable<string> Listed(string dir) =>
        Directory.EnumerateFileSystemEntries(dir).Order(StringComparer.Ordinal).SelectMany(entry =>
            Directory.Exists(entry) && !Directory.EnumerateFiles(entry).Any() && Directory.EnumerateDirectories(entry).Any()
                ? Directory.EnumerateDirectories(entry).Order(StringComparer.Ordinal)
                : new[] { entry }.AsEnumerable());

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
