namespace DoraSharp.Training;

/// <summary>The content of a checkpoint's <c>trainer.json</c>: the position in training and what must match to resume it.</summary>
internal sealed record CheckpointManifest
{
    /// <summary>Bumped when the layout changes, so old checkpoints are refused rather than misread.</summary>
    public const int CurrentFormat = 1;

    public int Format { get; init; } = CurrentFormat;

    public required TrainingState State { get; init; }

    /// <summary>The data-order generator is a pure function of (seed, epoch), so its state is the seed and the epoch in <see cref="State"/>.</summary>
    public required string DataOrder { get; init; }

    public required Dictionary<string, string> Fingerprint { get; init; }

    /// <summary>Every step's loss so far, so a resumed run reports the whole curve.</summary>
    public float[] Losses { get; init; } = [];
}
