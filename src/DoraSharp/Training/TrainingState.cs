namespace DoraSharp.Training;

/// <summary>
/// Where a <see cref="Trainer"/> is, as plain numbers that serialise as they are. Together with the model's
/// and the optimizer's state dicts this is everything a checkpoint needs: the data order is a pure function of
/// (<see cref="DataOrderSeed"/>, <see cref="Epoch"/>) (see <see cref="BatchOrder"/>), so the batch to come is
/// known from <see cref="BatchInEpoch"/>, and the learning-rate schedule is a pure function of
/// <see cref="Step"/> (see <see cref="LearningRates"/>).
/// </summary>
public sealed record TrainingState
{
    /// <summary>The seed of the data order (<see cref="TrainerOptions.Seed"/>).</summary>
    public required ulong DataOrderSeed { get; init; }

    /// <summary>The epoch in progress, 0-based; equal to the number of epochs once training is complete.</summary>
    public int Epoch { get; init; }

    /// <summary>The next batch to take within <see cref="Epoch"/>, 0-based.</summary>
    public int BatchInEpoch { get; init; }

    /// <summary>Batches processed so far, skipped ones included; also the step number the schedule uses next.</summary>
    public long Step { get; init; }

    /// <summary>Steps skipped because their loss was not finite (<see cref="NonFiniteLossPolicy.SkipStep"/>).</summary>
    public long SkippedSteps { get; init; }

    /// <summary>The learning rate of the last step taken (the base rate before the first).</summary>
    public double LearningRate { get; init; }
}
