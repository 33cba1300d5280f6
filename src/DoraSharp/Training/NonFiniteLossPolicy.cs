namespace DoraSharp.Training;

/// <summary>What a <see cref="Trainer"/> does when a step's loss (or, with clipping, its gradient norm) is NaN or infinite.</summary>
public enum NonFiniteLossPolicy
{
    /// <summary>Stop with a <see cref="TrainingDivergedException"/> naming the step: the weights are those before that step.</summary>
    Stop,

    /// <summary>Skip that step (no weight update) and go on; <see cref="TrainingState.SkippedSteps"/> counts them.</summary>
    SkipStep,
}
