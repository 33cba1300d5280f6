namespace DoraSharp.Examples.Experiments;

/// <summary>The pretraining phase over every seed; accuracies are on the pretraining test split (the images as they are).</summary>
/// <param name="Parameters">Parameters of the model (all trained).</param>
/// <param name="Runs">One run per seed, in seed order.</param>
public sealed record PretrainingResult(long Parameters, IReadOnlyList<SeedRun> Runs)
{
    /// <summary>Test accuracy per seed, mean and standard deviation.</summary>
    public Summary Accuracy => new(Runs.Select(r => r.Test.Accuracy));

    /// <summary>Training wall time per seed, in seconds.</summary>
    public Summary TrainSeconds => new(Runs.Select(r => r.TrainTime.TotalSeconds));

    /// <summary>Images scored per seed (the whole pretraining test split).</summary>
    public long EvaluatedImages => Runs.Select(r => r.Test.Count).Distinct().Single();
}
