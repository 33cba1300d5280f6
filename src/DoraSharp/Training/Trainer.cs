using System.Diagnostics;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp.Training;

/// <summary>
/// Trains a classifier (rows of an <see cref="IClassificationData"/> in, one logit per class out) with cross-entropy
/// loss on minibatches in a reproducible shuffled order. Only the parameters given are updated, so the same trainer serves full
/// fine-tuning (<c>model.parameters()</c>) and adapters (<see cref="LoraModel.TrainableParameters"/>).
/// <code>
/// using var trainer = new Trainer(model, lora.TrainableParameters(), new TrainerOptions { Epochs = 2, LearningRate = 0.005, Seed = 123 });
/// var result = trainer.Fit(train, progress);   // progress: IProgress&lt;TrainingProgress&gt;, called on this thread every step
/// </code>
/// Every tensor a step creates is disposed at the end of the step, so memory stays flat over long runs.
/// Where training stands is in <see cref="State"/>: plain numbers that a <see cref="CheckpointStore"/> saves with the
/// trained parameters and the optimizer's state (pass the store to <see cref="Fit"/>; <see cref="Resume"/> continues
/// from it bit-identically).
/// </summary>
public sealed class Trainer : IDisposable
{
    private readonly nn.Module<Tensor, Tensor> _model;
    private readonly Parameter[] _parameters;
    private readonly optim.Optimizer _optimizer;
    private float[] _resumedLosses = [];

    /// <summary>Creates the optimizer over <paramref name="parameters"/> (which must require gradients).</summary>
    /// <exception cref="ArgumentException">An option is invalid, there is nothing to train, or a parameter is frozen.</exception>
    public Trainer(nn.Module<Tensor, Tensor> model, IEnumerable<Parameter> parameters, TrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _model = model;
        _parameters = parameters.ToArray();
        if (_parameters.Length == 0)
            throw new ArgumentException("There are no parameters to train; pass the model's parameters (full fine-tuning) or the adapters' (LoraModel.TrainableParameters()).", nameof(parameters));
        if (_parameters.Any(p => !p.requires_grad))
            throw new ArgumentException("A parameter passed to the trainer does not require gradients (it is frozen); pass only trainable parameters.", nameof(parameters));
        Options = options;
        _optimizer = options.Optimizer switch
        {
            OptimizerKind.Adam => optim.Adam(_parameters, lr: options.LearningRate, weight_decay: options.WeightDecay),
            OptimizerKind.AdamW => optim.AdamW(_parameters, lr: options.LearningRate, weight_decay: options.WeightDecay),
            _ => throw new ArgumentOutOfRangeException(nameof(options), options.Optimizer, "unknown optimizer"),
        };
        State = new TrainingState { DataOrderSeed = options.Seed, LearningRate = options.LearningRate };
    }

    /// <summary>The options this trainer was built with.</summary>
    public TrainerOptions Options { get; }

    /// <summary>Where training stands (updated after every step).</summary>
    public TrainingState State { get; private set; }

    /// <summary>The optimizer (its <c>state_dict</c> belongs in a checkpoint beside <see cref="State"/>).</summary>
    public optim.Optimizer Optimizer => _optimizer;

    /// <summary>
    /// Trains from <see cref="State"/> until every epoch is done (a finished trainer returns at once) and puts
    /// the model back in the mode it was in. <paramref name="progress"/> is called synchronously after each step.
    /// </summary>
    /// <param name="train">The training examples: rows of <see cref="IClassificationData.Inputs"/> in, <see cref="IClassificationData.Labels"/> as targets.</param>
    /// <param name="progress">Receives one report per step; may be null.</param>
    /// <param name="cancellation">Checked before each step; cancelling throws <see cref="OperationCanceledException"/> with <see cref="State"/> at the step not taken.</param>
    /// <exception cref="TrainingDivergedException">A loss or gradient norm was not finite under <see cref="NonFiniteLossPolicy.Stop"/>.</exception>
    /// <param name="checkpoints">
    /// When given, a checkpoint is saved every <see cref="CheckpointOptions.EverySteps"/> steps, at the end of each
    /// epoch and when cancelled (after the last whole step); never after a divergence. Resuming is <see cref="Resume"/>'s.
    /// </param>
    /// <exception cref="IOException">A checkpoint could not be written; the earlier ones are intact and training stops.</exception>
    public TrainingResult Fit(IClassificationData train, IProgress<TrainingProgress>? progress = null, CancellationToken cancellation = default, CheckpointStore? checkpoints = null)
    {
        ArgumentNullException.ThrowIfNull(train);
        if (train.Count == 0) throw new ArgumentException($"The training split ({train.Source}) is empty.", nameof(train));
        var batchSize = Options.BatchSize;
        var batches = BatchOrder.BatchesPerEpoch(train.Count, batchSize);
        var totalSteps = (long)batches * Options.Epochs;
        var losses = new List<float>(_resumedLosses);
        long seen = 0;
        var clock = Stopwatch.StartNew();
        var wasTraining = _model.training;
        _model.train();
        try
        {
            while (State.Epoch < Options.Epochs)
            {
                var order = BatchOrder.Permutation(train.Count, Options.Seed, State.Epoch);
                for (var batch = State.BatchInEpoch; batch < batches; batch++)
                {
                    if (cancellation.IsCancellationRequested)
                    {
                        // Every step before this one is whole; keep them so a resume loses nothing.
                        if (checkpoints is not null && checkpoints.LastStep != State.Step && State.Step > 0) SaveCheckpoint(checkpoints, losses);
                        cancellation.ThrowIfCancellationRequested();
                    }
                    var start = batch * batchSize;
                    var indices = new long[System.Math.Min(batchSize, train.Count - start)];
                    for (var i = 0; i < indices.Length; i++) indices[i] = order[start + i];
                    var rate = LearningRates.At(Options.Schedule, Options.LearningRate, State.Step, totalSteps, Options.WarmupSteps);

                    var (loss, skipped) = Step(train, indices, rate);

                    seen += indices.Length;
                    losses.Add(loss);
                    State = State with
                    {
                        BatchInEpoch = batch + 1,
                        Step = State.Step + 1,
                        SkippedSteps = State.SkippedSteps + (skipped ? 1 : 0),
                        LearningRate = rate,
                    };
                    progress?.Report(new TrainingProgress(State.Step, totalSteps, State.Epoch, Options.Epochs, loss,
                        seen / System.Math.Max(clock.Elapsed.TotalSeconds, 1e-9), rate, skipped));
                    if (checkpoints is { Options.EverySteps: > 0 and var every } && State.Step % every == 0 && batch + 1 < batches)
                        SaveCheckpoint(checkpoints, losses);
                }
                State = State with { Epoch = State.Epoch + 1, BatchInEpoch = 0 };
                if (checkpoints is not null) SaveCheckpoint(checkpoints, losses);
            }
        }
        finally
        {
            _model.train(wasTraining);
        }
        return new TrainingResult(State, losses, clock.Elapsed, seen);
    }

    /// <summary>One optimizer step on the given rows; returns the batch loss and whether the step was skipped.</summary>
    private (float Loss, bool Skipped) Step(IClassificationData train, long[] indices, double rate)
    {
        using var scope = NewDisposeScope();
        var index = torch.tensor(indices, ScalarType.Int64);
        var x = train.Inputs.index_select(0, index);
        var y = train.Labels.index_select(0, index);
        _optimizer.zero_grad();
        var loss = F.cross_entropy(_model.call(x), y);
        var value = loss.item<float>();
        if (!float.IsFinite(value)) return NonFinite("loss", value, rate);
        loss.backward();
        if (Options.MaxGradNorm is { } maxNorm)
        {
            var norm = nn.utils.clip_grad_norm_(_parameters, maxNorm);
            if (!double.IsFinite(norm)) return NonFinite("gradient norm", norm, rate);
        }
        else
        {
            // A finite loss can still back-propagate an infinite or NaN gradient (an overflow inside the graph);
            // Adam would spread it into every moment, so it is checked as the loss is.
            foreach (var p in _parameters)
            {
                if (p.grad is not { } g) continue;
                if (!g.isfinite().all().item<bool>())
                {
                    var bad = g.masked_select(g.isfinite().logical_not())[0].item<float>();
                    return NonFinite("gradient", bad, rate);
                }
            }
        }
        foreach (var group in _optimizer.ParamGroups) group.LearningRate = rate;
        _optimizer.step();
        return (value, false);
    }

    private (float, bool) NonFinite(string quantity, double value, double rate)
    {
        _optimizer.zero_grad();
        if (Options.OnNonFiniteLoss == NonFiniteLossPolicy.Stop)
            throw new TrainingDivergedException(quantity, value, State, rate);
        return ((float)value, true);
    }

    /// <summary>
    /// Continues from the newest complete, undamaged checkpoint in <paramref name="checkpoints"/>: loads the
    /// parameters, the optimizer's moments and step counts, the torch generator and <see cref="State"/>, so the
    /// following <see cref="Fit"/> gives the same weights, bit for bit, as a run never interrupted.
    /// Damaged checkpoints are skipped with a warning to the store's callback. Returns false (nothing loaded) when there is none.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The checkpoint belongs to a different configuration or model; the message names each difference.</exception>
    public bool Resume(CheckpointStore checkpoints)
    {
        ArgumentNullException.ThrowIfNull(checkpoints);
        var manifest = checkpoints.LoadNewest(_parameters, _optimizer, Fingerprint(checkpoints));
        if (manifest is null) return false;
        State = manifest.State;
        _resumedLosses = manifest.Losses;
        return true;
    }

    private void SaveCheckpoint(CheckpointStore checkpoints, List<float> losses)
    {
        if (checkpoints.LastStep == State.Step) return;
        checkpoints.Save(State, losses, _parameters, _optimizer, Fingerprint(checkpoints));
    }

    /// <summary>What must be equal for a checkpoint to continue this run: the caller's keys, the options that decide the weights, the parameter shapes.</summary>
    private Dictionary<string, string> Fingerprint(CheckpointStore checkpoints)
    {
        var c = System.Globalization.CultureInfo.InvariantCulture;
        var f = new Dictionary<string, string>(checkpoints.Options.Fingerprint)
        {
            ["trainer.epochs"] = Options.Epochs.ToString(c),
            ["trainer.batch_size"] = Options.BatchSize.ToString(c),
            ["trainer.learning_rate"] = Options.LearningRate.ToString("R", c),
            ["trainer.optimizer"] = Options.Optimizer.ToString(),
            ["trainer.weight_decay"] = Options.WeightDecay.ToString("R", c),
            ["trainer.schedule"] = Options.Schedule.ToString(),
            ["trainer.warmup_steps"] = Options.WarmupSteps.ToString(c),
            ["trainer.max_grad_norm"] = Options.MaxGradNorm?.ToString("R", c) ?? "none",
            ["trainer.seed"] = Options.Seed.ToString(c),
            ["trainer.on_non_finite"] = Options.OnNonFiniteLoss.ToString(),
            ["parameters"] = _parameters.Length.ToString(c),
        };
        for (var i = 0; i < _parameters.Length; i++) f[$"parameter.{i}.shape"] = "[" + string.Join(",", _parameters[i].shape) + "]";
        return f;
    }

    /// <summary>Releases the optimizer's state tensors (the model and its parameters stay the caller's).</summary>
    public void Dispose() => _optimizer.Dispose();
}
