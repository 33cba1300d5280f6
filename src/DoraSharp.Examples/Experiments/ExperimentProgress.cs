using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>One training step of one phase of an experiment, for a progress display.</summary>
/// <param name="Arm">The arm being fine-tuned, or null while pretraining.</param>
/// <param name="Seed">The seed of this run.</param>
/// <param name="SeedIndex">Its position in the seed list, 0-based.</param>
/// <param name="SeedCount">How many seeds the experiment runs.</param>
/// <param name="Training">The step's own report.</param>
public readonly record struct ExperimentProgress(FineTuneArm? Arm, long Seed, int SeedIndex, int SeedCount, TrainingProgress Training)
{
    /// <summary>"Pretraining" or the arm's label: one progress bar per phase.</summary>
    public string Phase => Arm?.Label ?? "Pretraining";
}
