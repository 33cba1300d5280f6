namespace DoraSharp.Training;

/// <summary>
/// Where and how often a <see cref="Trainer"/> saves resumable checkpoints (see <see cref="CheckpointStore"/>).
/// Checkpointing never changes what is trained: a run that is killed and resumed ends with the same weights as
/// one that was not.
/// </summary>
public sealed record CheckpointOptions
{
    /// <summary>The directory holding <c>checkpoint-&lt;step&gt;</c> subdirectories; created when missing.</summary>
    public required string Directory { get; init; }

    /// <summary>Save every this many steps (0: only at the end of each epoch). At least 0.</summary>
    public int EverySteps { get; init; }

    /// <summary>How many complete checkpoints to keep (the newest). At least 1.</summary>
    public int Keep { get; init; } = 2;

    /// <summary>
    /// What else must match for a checkpoint to be resumed (e.g. <c>"r" → "4"</c>, the model name, the adapter
    /// config): compared key by key on resume, and a difference refuses the checkpoint naming the key.
    /// The trainer adds its own options and the parameter shapes.
    /// </summary>
    public IReadOnlyDictionary<string, string> Fingerprint { get; init; } = new Dictionary<string, string>();

    /// <summary>
    /// Test hook: how long to sleep between the files of a checkpoint, so the CLI's fault-injection tests can kill a
    /// run mid-write. Internal (the CLI sets it from its own environment variable); zero outside those tests.
    /// </summary>
    internal TimeSpan PauseBetweenFiles { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Directory)) throw new ArgumentException("CheckpointOptions.Directory is empty.", nameof(Directory));
        if (EverySteps < 0) throw new ArgumentException($"CheckpointOptions.EverySteps = {EverySteps} is invalid: expected at least 0.", nameof(EverySteps));
        if (Keep < 1) throw new ArgumentException($"CheckpointOptions.Keep = {Keep} is invalid: expected at least 1.", nameof(Keep));
    }
}
