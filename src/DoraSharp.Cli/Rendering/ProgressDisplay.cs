using DoraSharp.Examples.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Rendering;

/// <summary>
/// One progress bar per training phase (pretraining, then each fine-tuned method; a phase's bar spans all
/// seeds) showing the batch, the recent loss and images per second.
/// </summary>
internal static class ProgressDisplay
{
    /// <summary>Runs <paramref name="work"/> with a progress sink that draws the bars, and returns its result.</summary>
    public static T Run<T>(Func<IProgress<ExperimentProgress>, T> work) =>
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            // No elapsed-time column: a phase's bar spans every seed, so its clock would also count the other phases.
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn())
            .Start(context => work(new View(context)));

    private sealed class View(ProgressContext context) : IProgress<ExperimentProgress>
    {
        // The loss shown is the mean of the last few batches: a single batch's loss jumps too much to read.
        private const int Window = 20;
        private readonly Dictionary<string, ProgressTask> _tasks = [];
        private readonly Queue<float> _recent = new();
        private string? _phase;

        public void Report(ExperimentProgress value)
        {
            var t = value.Training;
            if (value.Phase != _phase) { _phase = value.Phase; _recent.Clear(); }
            if (!_tasks.TryGetValue(value.Phase, out var task))
                _tasks[value.Phase] = task = context.AddTask(value.Phase, maxValue: (double)t.TotalSteps * value.SeedCount);
            if (float.IsFinite(t.Loss)) _recent.Enqueue(t.Loss);
            while (_recent.Count > Window) _recent.Dequeue();
            var loss = _recent.Count > 0 ? _recent.Average() : float.NaN;
            var seed = value.SeedCount > 1 ? $"  seed {value.SeedIndex + 1}/{value.SeedCount}" : "";
            var batches = $"{t.Step}/{t.TotalSteps}";
            task.Description = Markup.Escape(
                $"{value.Phase,-17} batch {batches,-9} loss {loss,6:F3}  {t.ExamplesPerSecond,7:N0} img/s{seed}");
            task.Value = (double)value.SeedIndex * t.TotalSteps + t.Step;
        }
    }
}
