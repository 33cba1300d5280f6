namespace DoraSharp.Training;

/// <summary>One report per step from <see cref="Trainer.Fit"/>, for a progress display.</summary>
/// <param name="Step">Steps done so far, 1-based (this step included).</param>
/// <param name="TotalSteps">Steps in the whole run: epochs × batches per epoch.</param>
/// <param name="Epoch">The epoch of this step, 0-based.</param>
/// <param name="Epochs">Epochs in the run.</param>
/// <param name="Loss">This batch's mean loss (NaN or infinite when the step was skipped as non-finite).</param>
/// <param name="ExamplesPerSecond">Examples processed per second of wall time since <see cref="Trainer.Fit"/> began.</param>
/// <param name="LearningRate">The learning rate this step used.</param>
/// <param name="Skipped">True when the step was skipped under <see cref="NonFiniteLossPolicy.SkipStep"/>.</param>
public readonly record struct TrainingProgress(
    long Step, long TotalSteps, int Epoch, int Epochs, float Loss, double ExamplesPerSecond, double LearningRate, bool Skipped);
