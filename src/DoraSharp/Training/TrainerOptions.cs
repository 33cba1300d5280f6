namespace DoraSharp.Training;

/// <summary>
/// Everything that decides how a <see cref="Trainer"/> trains; with the same options, model, parameters and data
/// two runs give bit-identical weights on the same machine and thread count.
/// </summary>
public sealed record TrainerOptions
{
    /// <summary>Passes over the training data. At least 1.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Examples per optimizer step; the last batch of an epoch may be smaller. At least 1.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The base learning rate. Positive and finite.</summary>
    public double LearningRate { get; init; } = 0.001;

    /// <summary>Adam or AdamW.</summary>
    public OptimizerKind Optimizer { get; init; } = OptimizerKind.Adam;

    /// <summary>Weight decay (L2 for Adam, decoupled for AdamW). At least 0.</summary>
    public double WeightDecay { get; init; }

    /// <summary>How the learning rate changes over the steps.</summary>
    public LearningRateSchedule Schedule { get; init; } = LearningRateSchedule.Constant;

    /// <summary>Steps of linear warm-up at the start of the schedule. At least 0.</summary>
    public int WarmupSteps { get; init; }

    /// <summary>When set, gradients are rescaled so their total L2 norm is at most this (<c>clip_grad_norm_</c>). Positive.</summary>
    public double? MaxGradNorm { get; init; }

    /// <summary>Seeds the data order (see <see cref="BatchOrder"/>). Model initialisation is the caller's (torch.manual_seed).</summary>
    public ulong Seed { get; init; }

    /// <summary>What to do when a step's loss is NaN or infinite.</summary>
    public NonFiniteLossPolicy OnNonFiniteLoss { get; init; } = NonFiniteLossPolicy.Stop;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option, its value and what is allowed.</summary>
    public void Validate()
    {
        if (Epochs < 1) throw Invalid(nameof(Epochs), Epochs, "at least 1");
        if (BatchSize < 1) throw Invalid(nameof(BatchSize), BatchSize, "at least 1");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw Invalid(nameof(LearningRate), LearningRate, "a finite number > 0");
        if (!Enum.IsDefined(Optimizer)) throw Invalid(nameof(Optimizer), Optimizer, "Adam or AdamW");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw Invalid(nameof(WeightDecay), WeightDecay, "a finite number >= 0");
        if (!Enum.IsDefined(Schedule)) throw Invalid(nameof(Schedule), Schedule, "Constant, Linear or Cosine");
        if (WarmupSteps < 0) throw Invalid(nameof(WarmupSteps), WarmupSteps, "at least 0");
        if (MaxGradNorm is { } clip && (!(clip > 0) || double.IsInfinity(clip))) throw Invalid(nameof(MaxGradNorm), clip, "a finite number > 0, or null for no clipping");
        if (!Enum.IsDefined(OnNonFiniteLoss)) throw Invalid(nameof(OnNonFiniteLoss), OnNonFiniteLoss, "Stop or SkipStep");
    }

    private static ArgumentException Invalid(string option, object value, string expected) =>
        new($"TrainerOptions.{option} = {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)} is invalid: expected {expected}.", option);
}
