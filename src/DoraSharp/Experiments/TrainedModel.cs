namespace DoraSharp.Experiments;

/// <summary>
/// A model just trained and evaluated in an experiment, handed to the caller (to save adapters, analyse
/// weights…) before the experiment disposes it.
/// </summary>
/// <param name="Arm">Its arm.</param>
/// <param name="Seed">The seed of the run.</param>
/// <param name="SeedIndex">Position of the seed in the list, 0-based.</param>
/// <param name="Model">The model; valid only during the callback.</param>
/// <param name="Adapters">The adapters for LoRA and DoRA arms, else null; valid only during the callback.</param>
public sealed record TrainedModel(FineTuneArm Arm, long Seed, int SeedIndex, MnistClassifier Model, LoraModel? Adapters);
