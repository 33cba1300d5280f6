namespace DoraSharp.Examples.Experiments;

/// <summary>An arm's results over every seed.</summary>
/// <param name="Arm">The arm.</param>
/// <param name="TrainableParameters">Parameters the optimizer updated (0 for the frozen base).</param>
/// <param name="TotalParameters">All parameters of the model as trained, adapters included (PEFT's "all params").</param>
/// <param name="Runs">One run per seed, in seed order.</param>
public sealed record ArmResult(FineTuneArm Arm, long TrainableParameters, long TotalParameters, IReadOnlyList<SeedRun> Runs)
{
    /// <summary>Test accuracy per seed, mean and standard deviation.</summary>
    public Summary Accuracy => new(Runs.Select(r => r.Test.Accuracy));

    /// <summary>Training wall time per seed, in seconds.</summary>
    public Summary TrainSeconds => new(Runs.Select(r => r.TrainTime.TotalSeconds));

    /// <summary>Images scored per seed; the same for every seed (the whole evaluation split).</summary>
    public long EvaluatedImages => Runs.Select(r => r.Test.Count).Distinct().Single();

    /// <summary>Trainable share of all parameters, in percent (PEFT's "trainable%").</summary>
    public double TrainablePercent => 100.0 * TrainableParameters / TotalParameters;
}
