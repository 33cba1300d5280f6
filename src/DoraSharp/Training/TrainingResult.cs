namespace DoraSharp.Training;

/// <summary>What one <see cref="Trainer.Fit"/> call did.</summary>
/// <param name="State">The state at the end (epoch = number of epochs).</param>
/// <param name="Losses">The mean loss of every step from step 0, in order, those before a <see cref="Trainer.Resume"/> included (non-finite for skipped steps).</param>
/// <param name="Elapsed">Wall time of this call (after a resume, only the part since).</param>
/// <param name="ExamplesSeen">Examples fed through the model in this call, skipped steps included.</param>
public sealed record TrainingResult(TrainingState State, IReadOnlyList<float> Losses, TimeSpan Elapsed, long ExamplesSeen);
