namespace DoraSharp.Training;

/// <summary>
/// A checkpoint was written by a run with a different configuration or model than the one resuming it, so it
/// cannot be continued; the message names every difference as "key: checkpoint X, run Y".
/// </summary>
public sealed class CheckpointMismatchException : Exception
{
    /// <summary>Creates the exception for the checkpoint at <paramref name="path"/>.</summary>
    public CheckpointMismatchException(string path, IReadOnlyList<string> differences)
        : base($"{path}: the checkpoint was written by a different configuration and cannot be resumed: {string.Join("; ", differences)}. " +
               "Use another checkpoint directory, or delete this one to start over.")
    {
        Path = path;
        Differences = differences;
    }

    /// <summary>The checkpoint directory refused.</summary>
    public string Path { get; }

    /// <summary>Each difference, "key: checkpoint X, run Y".</summary>
    public IReadOnlyList<string> Differences { get; }
}
