namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// A trained model handed to <see cref="ClassificationExperiment.Run"/>'s callback (to save it) before it is
/// disposed. Valid only during the callback.
/// </summary>
/// <param name="Result">How the run went.</param>
/// <param name="Encoder">The encoder (for <see cref="FineTuningMethod.Frozen"/> the pretrained one, shared by the seeds).</param>
/// <param name="Head">The trained classification head, <c>Linear(hidden, classes)</c>.</param>
/// <param name="Adapters">The LoRA/DoRA adapters on <paramref name="Encoder"/>; null for Frozen and Full.</param>
public sealed record TrainedRun(RunResult Result, BertEncoder Encoder, TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> Head, LoraModel? Adapters);
