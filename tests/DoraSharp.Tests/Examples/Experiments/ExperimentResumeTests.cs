using DoraSharp.Examples.Experiments;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>
/// An experiment stopped (cancelled) several times, in different phases, and resumed each time ends with the
/// same accuracies and loss curves as the uninterrupted <see cref="TinyExperiment"/>, and never re-runs a finished phase.
/// </summary>
[Collection(SeededRuns.Name)]
public sealed class ExperimentResumeTests(TinyExperiment tiny) : IClassFixture<TinyExperiment>, IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "dora-exp-resume-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Stopped_three_times_and_resumed_it_gives_the_uninterrupted_results_exactly()
    {
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = _dir, EverySteps = 3, Keep = 2 });
        // 640 images in batches of 64: 10 steps per phase; 2 seeds × (pretraining + 3 trained arms) = 80 steps. Stop after
        // 7 steps (inside the first pretraining), 12 more (inside full fine-tuning) and 25 more (inside the second seed).
        ExperimentResult? result = null;
        var phasesSeen = new List<(string Phase, long Seed)>();
        foreach (var stopAfter in new[] { 7, 12, 25, int.MaxValue })
        {
            using var cancel = new CancellationTokenSource();
            var steps = 0;
            var progress = new Sink(p =>
            {
                if (phasesSeen.Count == 0 || phasesSeen[^1] != (p.Phase, p.Seed)) phasesSeen.Add((p.Phase, p.Seed));
                if (++steps == stopAfter) cancel.Cancel();
            });
            try
            {
                result = FineTuneExperiment.Run(tiny.Data, tiny.Settings with { Training = tiny.Settings.Training with { BatchSize = 64 } }, tiny.Arms, progress, null, cancel.Token, checkpoints);
            }
            catch (OperationCanceledException)
            {
                Assert.NotEqual(int.MaxValue, stopAfter);
            }
        }

        var reference = FineTuneExperiment.Run(tiny.Data, tiny.Settings with { Training = tiny.Settings.Training with { BatchSize = 64 } }, tiny.Arms);
        Assert.NotNull(result);
        Assert.Equal(reference.Pretraining.Runs.Select(r => r.Test), result.Pretraining.Runs.Select(r => r.Test));
        Assert.Equal(reference.Pretraining.Runs.Select(r => r.Losses.ToArray()), result.Pretraining.Runs.Select(r => r.Losses.ToArray()));
        for (var a = 0; a < reference.Arms.Count; a++)
        {
            Assert.Equal(reference.Arms[a].Runs.Select(r => r.Test), result.Arms[a].Runs.Select(r => r.Test));
            Assert.Equal(reference.Arms[a].Runs.Select(r => r.Losses.ToArray()), result.Arms[a].Runs.Select(r => r.Losses.ToArray()));
            Assert.Equal(reference.Arms[a].TrainableParameters, result.Arms[a].TrainableParameters);
        }
        // Each phase trains in at most the sessions it was interrupted in; none is started over once finished.
        var distinct = phasesSeen.Distinct().ToList();
        Assert.Equal(2 * 4, distinct.Count);
        Assert.True(phasesSeen.Count <= distinct.Count + 3, string.Join(", ", phasesSeen));
    }

    [Fact]
    public void A_phase_is_recorded_as_finished_only_after_its_callback_so_a_save_cut_short_runs_the_phase_again()
    {
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = _dir, Keep = 1 });
        var settings = tiny.Settings with { Seeds = 1, Training = tiny.Settings.Training with { BatchSize = 64 } };
        var lora = tiny.Arms.Single(a => a.Method == FineTuneMethod.Lora);

        // The first attempt dies while the LoRA arm's callback saves its adapter (as a kill there would).
        Assert.Throws<IOException>(() => FineTuneExperiment.Run(tiny.Data, settings, tiny.Arms, null, trained =>
        {
            Assert.NotNull(trained.PhaseDirectory);
            Assert.False(File.Exists(Path.Combine(trained.PhaseDirectory, "phase.json")), $"{trained.Arm.Slug} was recorded as finished before its callback ran");
            if (trained.Arm == lora) throw new IOException("killed while saving the adapter");
        }, default, checkpoints));

        // Resumed: the arms before it are finished and skipped; the LoRA arm was never recorded, so it runs and calls back again.
        var called = new List<string>();
        FineTuneExperiment.Run(tiny.Data, settings, tiny.Arms, null, trained =>
        {
            called.Add(trained.Arm.Slug);
            Assert.Equal(checkpoints.PhaseDirectory(trained.Seed, trained.Arm.Slug), trained.PhaseDirectory);
        }, default, checkpoints);
        Assert.Equal(["lora-r4", "dora-r4"], called);
    }

    private sealed class Sink(Action<ExperimentProgress> action) : IProgress<ExperimentProgress>
    {
        public void Report(ExperimentProgress value) => action(value);
    }
}
