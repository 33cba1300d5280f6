namespace DoraSharp.Training;

/// <summary>What one <see cref="Trainer.Fit"/> call did.</summary>
/// <param name="State">The state at the end (epoch = number of epochs).</param>
/// <param name="Losses">The mean loss of every step, in order (non-finite for skipped steps).</param>
/// <param name="Elapsed">Wall time of the call.</param>
/// <param name="ExamplesSeen">Examples fed through the model, skipped steps included.</param>
public sealed record TrainingResult(TrainingState State, IReadOnlyList<float> Losses, TimeSpan Elapsed, long ExamplesSeen);
