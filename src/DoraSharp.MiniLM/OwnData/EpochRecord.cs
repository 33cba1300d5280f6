namespace DoraSharp.MiniLM.OwnData;

/// <summary>One epoch of `dora train`: mean training loss, the validation numbers after it, and its wall time.</summary>
/// <param name="Epoch">1-based.</param>
/// <param name="TrainLoss">Mean loss over the epoch's batches.</param>
/// <param name="ValidationLoss">Mean loss on the validation set after the epoch.</param>
/// <param name="ValidationScore">Validation accuracy (classification) or MRR (similarity).</param>
/// <param name="Seconds">Wall time of the epoch's training steps (validation excluded).</param>
public sealed record EpochRecord(int Epoch, double TrainLoss, double ValidationLoss, double ValidationScore, double Seconds);

/// <summary>A training progress report, after every optimizer step.</summary>
/// <param name="Epoch">1-based epoch in progress.</param>
/// <param name="Epochs">Maximum epochs.</param>
/// <param name="Step">Steps done, over all epochs.</param>
/// <param name="TotalSteps">Steps if no early stop.</param>
/// <param name="Loss">Mean loss of the epoch so far.</param>
/// <param name="ExamplesPerSecond">Training examples per second over the epoch so far.</param>
/// <param name="Phase">"train" or "validate".</param>
public sealed record TrainingStep(int Epoch, int Epochs, int Step, int TotalSteps, double Loss, double ExamplesPerSecond, string Phase);
