using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>One arm (or the pretraining) on one seed.</summary>
/// <param name="Seed">The seed.</param>
/// <param name="Test">Accuracy on the whole evaluation split, with the count of images scored.</param>
/// <param name="TrainTime">Wall time of training (zero for the frozen base).</param>
/// <param name="Losses">The loss of every training step (empty for the frozen base).</param>
public sealed record SeedRun(long Seed, EvaluationResult Test, TimeSpan TrainTime, IReadOnlyList<float> Losses);
