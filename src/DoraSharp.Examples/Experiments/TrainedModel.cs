namespace DoraSharp.Examples.Experiments;

/// <summary>
/// A model just trained and evaluated in an experiment, handed to the caller (to save adapters, analyse
/// weights…) before the experiment disposes it.
/// </summary>
/// <param name="Arm">Its arm.</param>
/// <param name="Seed">The seed of the run.</param>
/// <param name="SeedIndex">Position of the seed in the list, 0-based.</param>
/// <param name="Model">The model; valid only during the callback.</param>
/// <param name="Adapters">The adapters for LoRA and DoRA arms, else null; valid only during the callback.</param>
public sealed record TrainedModel(FineTuneArm Arm, long Seed, int SeedIndex, MnistClassifier Model, LoraModel? Adapters)
{
    /// <summary>
    /// The phase's checkpoint directory (<see cref="ExperimentCheckpoints.PhaseDirectory"/>) when the experiment checkpoints,
    /// else null. Files the callback writes there survive a kill with the phase: the phase is recorded as finished only
    /// after the callback returns, so they are complete whenever the phase counts as finished, and a resumed run, which
    /// skips finished phases without calling back, still finds them. They are deleted with the checkpoints.
    /// </summary>
    public string? PhaseDirectory { get; init; }
}
