using DoraSharp.Training;
using TorchSharp;
using TorchSharp.Modules;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// The worked example: for each seed, pretrain the settings' model (<see cref="MnistMlp"/> or <see cref="MnistCnn"/>,
/// <see cref="ExperimentSettings.CreateModel"/>), then for each arm copy it, adapt the
/// copy (nothing, full fine-tuning, LoRA or DoRA), fine-tune it and evaluate it on the whole fine-tuning test
/// split. All arms of a seed start from the same pretrained weights and see the same batches in the same order.
/// </summary>
public static class FineTuneExperiment
{
    /// <summary>The arms of <c>dora demo</c>: the frozen base, full fine-tuning, LoRA and DoRA at one rank.</summary>
    public static IReadOnlyList<FineTuneArm> DemoArms(int rank, double alpha) =>
        [FineTuneArm.Frozen, FineTuneArm.Full, FineTuneArm.Lora(rank, alpha), FineTuneArm.Dora(rank, alpha)];

    /// <summary>The arms of <c>dora compare</c>: the frozen base, full fine-tuning, then LoRA and DoRA at each rank.</summary>
    /// <param name="ranks">The ranks, each at least 1.</param>
    /// <param name="alphaOfRank">lora_alpha for a rank.</param>
    public static IReadOnlyList<FineTuneArm> RankSweepArms(IEnumerable<int> ranks, Func<int, double> alphaOfRank)
    {
        var arms = new List<FineTuneArm> { FineTuneArm.Frozen, FineTuneArm.Full };
        foreach (var r in ranks) arms.AddRange([FineTuneArm.Lora(r, alphaOfRank(r)), FineTuneArm.Dora(r, alphaOfRank(r))]);
        return arms;
    }

    /// <summary>Runs the experiment.</summary>
    /// <param name="data">The splits (see <see cref="ExperimentData"/>).</param>
    /// <param name="settings">Model, training and seed settings.</param>
    /// <param name="arms">The variants to fine-tune and evaluate; each at most once.</param>
    /// <param name="progress">Receives every training step, synchronously; may be null.</param>
    /// <param name="onTrained">
    /// Called with each model after its evaluation, before it is disposed and before its phase is recorded as finished
    /// (so files it writes, e.g. into <see cref="TrainedModel.PhaseDirectory"/>, are complete whenever the record exists); may be null.
    /// </param>
    /// <param name="cancellation">Checked before every training step.</param>
    /// <param name="checkpoints">
    /// When given, every phase checkpoints as it trains and records its results when finished, and a run over the same
    /// directory skips finished phases and resumes the interrupted one (<paramref name="onTrained"/> is not called for skipped arms).
    /// </param>
    /// <exception cref="ArgumentException">A setting or arm is invalid (the message names it).</exception>
    /// <exception cref="TrainingDivergedException">A loss became NaN or infinite and the policy is to stop.</exception>
    /// <exception cref="CheckpointMismatchException">A checkpoint or finished phase in <paramref name="checkpoints"/> is of another configuration.</exception>
    public static ExperimentResult Run(ExperimentData data, ExperimentSettings settings, IReadOnlyList<FineTuneArm> arms,
        IProgress<ExperimentProgress>? progress = null, Action<TrainedModel>? onTrained = null, CancellationToken cancellation = default,
        ExperimentCheckpoints? checkpoints = null)
    {
        ArgumentNullException.ThrowIfNull(data);
        Validate(settings, arms);

        var seeds = settings.SeedValues;
        var pretrainRuns = new List<SeedRun>();
        var armRuns = arms.ToDictionary(a => a, _ => new List<SeedRun>());
        var counts = new Dictionary<FineTuneArm, (long Trainable, long Total)>();
        long modelParameters = 0;

        for (var s = 0; s < seeds.Count; s++)
        {
            var seed = seeds[s];
            torch.manual_seed(seed);
            using var pretrained = settings.CreateModel();
            modelParameters = pretrained.parameters().Sum(p => p.numel());
            var pretrainKeys = Fingerprint(settings, data, seed, PretrainingPhase, null);
            using (var trainer = new Trainer(pretrained, pretrained.parameters(), settings.PretrainingOptions(seed)))
            {
                var store = checkpoints?.Store(seed, PretrainingPhase, pretrainKeys);
                if (store is not null) trainer.Resume(store);
                // A finished pretraining's weights come back from its last checkpoint; if that is gone, the phase runs again from where it can.
                if (checkpoints?.Finished(seed, PretrainingPhase, pretrainKeys) is { } done && trainer.State.Epoch == settings.PretrainEpochs)
                {
                    pretrainRuns.Add(done.Run);
                }
                else
                {
                    var pretraining = trainer.Fit(data.PretrainTrain, Relay(progress, null, seed, s, seeds.Count), cancellation, store);
                    var run = new SeedRun(seed, Evaluator.Evaluate(pretrained, data.PretrainTest), pretraining.Elapsed, pretraining.Losses);
                    pretrainRuns.Add(run);
                    checkpoints?.MarkFinished(seed, PretrainingPhase, Record(pretrainKeys, run, modelParameters, modelParameters));
                }
            }

            foreach (var arm in arms)
            {
                var armKeys = Fingerprint(settings, data, seed, arm.Slug, arm);
                if (checkpoints?.Finished(seed, arm.Slug, armKeys) is { } finished)
                {
                    counts[arm] = (finished.TrainableParameters, finished.TotalParameters);
                    armRuns[arm].Add(finished.Run);
                    continue;
                }
                using var model = pretrained.Copy();
                var (run, trainable, lora) = FineTune(model, arm, data, settings, seed, Relay(progress, arm, seed, s, seeds.Count), cancellation,
                    checkpoints?.Store(seed, arm.Slug, armKeys));
                counts[arm] = (trainable, model.parameters().Sum(p => p.numel()));
                armRuns[arm].Add(run);
                // The callback first: whatever it saves (an adapter, say) must be durable before the phase is recorded as
                // finished, because a resumed run skips a finished phase and never calls the callback for it again. A kill
                // before the record runs the phase again on resume, and the callback with it.
                onTrained?.Invoke(new TrainedModel(arm, seed, s, model, lora) { PhaseDirectory = checkpoints?.PhaseDirectory(seed, arm.Slug) });
                checkpoints?.MarkFinished(seed, arm.Slug, Record(armKeys, run, counts[arm].Trainable, counts[arm].Total));
                // Put the base layers back so that disposing the model frees their tensors now (an adapter
                // does not own its base layer's weight, so the base layer would otherwise wait for the GC).
                lora?.Unload();
            }
        }

        return new ExperimentResult(settings, DataSummary.Of(data), new PretrainingResult(modelParameters, pretrainRuns),
            arms.Select(a => new ArmResult(a, counts[a].Trainable, counts[a].Total, armRuns[a])).ToList());
    }

    /// <summary>
    /// Checks settings and arms without training anything: every setting, each arm once, each adapter
    /// configuration, and that the targets match layers of the model (tried on a throwaway model).
    /// </summary>
    /// <exception cref="ArgumentException">The first problem found, named (a <see cref="LoraConfigException"/> for adapter options and targets).</exception>
    public static void Validate(ExperimentSettings settings, IReadOnlyList<FineTuneArm> arms)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(arms);
        settings.Validate();
        if (arms.Count == 0) throw new ArgumentException("Give at least one arm to fine-tune.", nameof(arms));
        if (arms.Distinct().Count() != arms.Count) throw new ArgumentException("Each arm may appear only once.", nameof(arms));
        foreach (var arm in arms.Where(a => a.IsAdapter)) AdapterConfig(settings, arm).Validate();
        if (arms.FirstOrDefault(a => a.IsAdapter) is { } adapterArm)
        {
            // Targets that match no layer would otherwise surface only after pretraining: try them on a throwaway model.
            using var probe = settings.CreateModel();
            LoraModel.Wrap(probe, AdapterConfig(settings, adapterArm)).Unload();   // base layers back, so disposing frees them
        }
    }

    /// <summary>The adapter configuration of an adapter arm.</summary>
    public static LoraConfig AdapterConfig(ExperimentSettings settings, FineTuneArm arm) => new()
    {
        R = arm.Rank,
        LoraAlpha = arm.Alpha,
        UseDora = arm.Method == FineTuneMethod.Dora,
        TargetModules = settings.TargetModules,
    };

    private const string PretrainingPhase = "pretraining";

    /// <summary>What a phase's checkpoints must agree with (the trainer adds its own options and parameter shapes).</summary>
    private static Dictionary<string, string> Fingerprint(ExperimentSettings settings, ExperimentData data, long seed, string phase, FineTuneArm? arm)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var keys = new Dictionary<string, string>
        {
            ["phase"] = phase,
            ["seed"] = seed.ToString(c),
            ["dataset"] = data.Dataset,
            ["task"] = data.Task.ToString(),
            ["train_images"] = data.PretrainTrain.Count.ToString(c),
            ["model"] = settings.Model.ToString(),
            ["pretrain_epochs"] = settings.PretrainEpochs.ToString(c),
        };
        if (settings.Model == ExperimentModel.Mlp)
        {
            keys["hidden1"] = settings.Hidden1.ToString(c);
            keys["hidden2"] = settings.Hidden2.ToString(c);
        }
        if (arm is not null)
        {
            keys["method"] = arm.Method.ToString();
            keys["fine_tune_epochs"] = settings.FineTuneEpochs.ToString(c);
            if (arm.IsAdapter)
            {
                keys["r"] = arm.Rank.ToString(c);
                keys["lora_alpha"] = arm.Alpha.ToString("R", c);
                keys["target_modules"] = string.Join(",", settings.TargetModules);
            }
        }
        return keys;
    }

    private static PhaseRecord Record(Dictionary<string, string> keys, SeedRun run, long trainable, long total) =>
        new(keys, run.Seed, run.Test.Correct, run.Test.Count, run.TrainTime.TotalSeconds, run.Losses.ToArray(), trainable, total);

    private static (SeedRun Run, long Trainable, LoraModel? Lora) FineTune(MnistClassifier model, FineTuneArm arm, ExperimentData data,
        ExperimentSettings settings, long seed, IProgress<TrainingProgress>? progress, CancellationToken cancellation, CheckpointStore? store)
    {
        LoraModel? lora = null;
        IReadOnlyList<Parameter> parameters;
        switch (arm.Method)
        {
            case FineTuneMethod.Frozen:
                parameters = [];
                break;
            case FineTuneMethod.Full:
                parameters = model.parameters().ToList();
                break;
            default:
                // Same torch seed for LoRA and DoRA: at one rank both start from the same A (B = 0).
                torch.manual_seed(ExperimentSettings.AdapterInitSeed(seed));
                lora = LoraModel.Wrap(model, AdapterConfig(settings, arm));
                parameters = lora.TrainableParameters().ToList();
                break;
        }

        TrainingResult? training = null;
        if (parameters.Count > 0)
        {
            using var trainer = new Trainer(model, parameters, settings.FineTuningOptions(seed));
            if (store is not null) trainer.Resume(store);
            training = trainer.Fit(data.FineTuneTrain, progress, cancellation, store);
        }
        var test = Evaluator.Evaluate(model, data.FineTuneTest);
        var run = new SeedRun(seed, test, training?.Elapsed ?? TimeSpan.Zero, training?.Losses ?? []);
        return (run, parameters.Sum(p => p.numel()), lora);
    }

    private static IProgress<TrainingProgress>? Relay(IProgress<ExperimentProgress>? progress, FineTuneArm? arm, long seed, int index, int count) =>
        progress is null ? null : new StepRelay(p => progress.Report(new ExperimentProgress(arm, seed, index, count, p)));

    /// <summary>Forwards synchronously (<see cref="Progress{T}"/> would post to a thread pool and reorder reports).</summary>
    private sealed class StepRelay(Action<TrainingProgress> report) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value) => report(value);
    }
}
