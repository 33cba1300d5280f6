namespace DoraSharp.Examples.Experiments;

/// <summary>Everything an experiment measured.</summary>
/// <param name="Settings">The settings it ran with.</param>
/// <param name="Data">The data it used.</param>
/// <param name="Pretraining">The pretrained models' accuracy on the images as they are.</param>
/// <param name="Arms">Each arm's results on the fine-tuning test split, in the order the arms were given.</param>
public sealed record ExperimentResult(ExperimentSettings Settings, DataSummary Data, PretrainingResult Pretraining, IReadOnlyList<ArmResult> Arms)
{
    /// <summary>The result of <paramref name="arm"/>.</summary>
    /// <exception cref="KeyNotFoundException">The experiment did not run that arm.</exception>
    public ArmResult this[FineTuneArm arm] => Arms.FirstOrDefault(a => a.Arm == arm)
        ?? throw new KeyNotFoundException($"The experiment has no arm {arm.Label}.");
}
