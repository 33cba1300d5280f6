using DoraSharp.Analysis;
using DoraSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.Examples.Experiments;

/// <summary>What <see cref="DecompositionExperiment.Run"/> measured.</summary>
/// <param name="Settings">The settings used (first seed only).</param>
/// <param name="Data">The data used.</param>
/// <param name="Rank">Adapter rank of the LoRA and DoRA runs.</param>
/// <param name="Alpha">Their lora_alpha.</param>
/// <param name="Checkpoints">Checkpoints per method, evenly spaced over fine-tuning.</param>
/// <param name="Points">Every (layer, checkpoint) point of every method.</param>
public sealed record DecompositionResult(ExperimentSettings Settings, DataSummary Data, int Rank, double Alpha, int Checkpoints,
    IReadOnlyList<DecompositionPoint> Points)
{
    /// <summary>The methods in the order they ran: FT, LoRA, DoRA.</summary>
    public static IReadOnlyList<string> Methods { get; } = ["FT", "LoRA", "DoRA"];

    /// <summary>Least-squares slope of ΔM on ΔD and Pearson's r over a method's points (the paper's Figure 2 reading).</summary>
    public LinearFit Fit(string method)
        => LinearFit.Of(Points.Where(p => p.Method == method).Select(p => (p.DeltaDirection, p.DeltaMagnitude)).ToList());
}

/// <summary>
/// The DoRA paper's magnitude/direction analysis (§2.2, Figure 2) on the worked example's task: pretrain
/// the settings' model (MLP or CNN) once, then fine-tune a copy in full (FT), one with LoRA and one with DoRA, recording ΔM and ΔD of
/// every adapted layer at checkpoints evenly spaced over fine-tuning.
/// </summary>
public static class DecompositionExperiment
{
    /// <summary>Runs FT, LoRA and DoRA with the first seed of <paramref name="settings"/>.</summary>
    /// <exception cref="ArgumentException">A setting is invalid, or <paramref name="checkpoints"/> &lt; 1.</exception>
    public static DecompositionResult Run(ExperimentData data, ExperimentSettings settings, int rank, double alpha, int checkpoints,
        IProgress<ExperimentProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (checkpoints < 1) throw new ArgumentException($"checkpoints must be >= 1 (got {checkpoints}).", nameof(checkpoints));
        var arms = new[] { FineTuneArm.Full, FineTuneArm.Lora(rank, alpha), FineTuneArm.Dora(rank, alpha) };
        FineTuneExperiment.Validate(settings, arms);

        var seed = settings.Seed;
        torch.manual_seed(seed);
        using var pretrained = settings.CreateModel();
        using (var trainer = new Trainer(pretrained, pretrained.parameters(), settings.PretrainingOptions(seed)))
            trainer.Fit(data.PretrainTrain, Relay(progress, null, seed, _ => { }), cancellation);

        var points = new List<DecompositionPoint>();
        var options = settings.FineTuningOptions(seed);
        var totalSteps = (long)BatchOrder.BatchesPerEpoch(data.FineTuneTrain.Count, options.BatchSize) * options.Epochs;
        // Checkpoint k of K at step round(k·T/K): the last one is the end of training, as in the paper's figure.
        var at = Enumerable.Range(1, checkpoints).Select(k => (Step: (long)System.Math.Round((double)k * totalSteps / checkpoints), Index: k))
            .Where(c => c.Step >= 1).GroupBy(c => c.Step).ToDictionary(g => g.Key, g => g.Last().Index);

        for (var i = 0; i < arms.Length; i++)
        {
            var arm = arms[i];
            using var model = pretrained.Copy();
            LoraModel? lora = null;
            IReadOnlyList<Parameter> parameters;
            MagnitudeDirectionTracker tracker;
            if (arm.IsAdapter)
            {
                torch.manual_seed(ExperimentSettings.AdapterInitSeed(seed));   // LoRA and DoRA start from the same A
                lora = LoraModel.Wrap(model, FineTuneExperiment.AdapterConfig(settings, arm));
                parameters = lora.TrainableParameters().ToList();
                tracker = MagnitudeDirectionTracker.ForAdapters(DecompositionResult.Methods[i], lora);
            }
            else
            {
                parameters = model.parameters().ToList();
                tracker = MagnitudeDirectionTracker.ForWeights(DecompositionResult.Methods[i], model, settings.TargetModules);
            }
            using (tracker)
            {
                using var trainer = new Trainer(model, parameters, options);
                trainer.Fit(data.FineTuneTrain, Relay(progress, arm, seed, step =>
                {
                    if (at.TryGetValue(step, out var k)) tracker.Record(k, step);
                }), cancellation);
                points.AddRange(tracker.Points);
            }
            lora?.Unload();   // base layers back, so disposing the model frees them now
        }
        return new DecompositionResult(settings, DataSummary.Of(data), rank, alpha, checkpoints, points);
    }

    private static IProgress<TrainingProgress> Relay(IProgress<ExperimentProgress>? progress, FineTuneArm? arm, long seed, Action<long> afterStep)
        => new StepRelay(p =>
        {
            afterStep(p.Step);
            progress?.Report(new ExperimentProgress(arm, seed, 0, 1, p));
        });

    /// <summary>Synchronous, in order (<see cref="Progress{T}"/> would post to the thread pool).</summary>
    private sealed class StepRelay(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
