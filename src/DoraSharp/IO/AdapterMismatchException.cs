namespace DoraSharp.IO;

/// <summary>
/// A well-formed adapter that does not fit the model it is loaded into: its tensors name modules the model
/// does not have or leave out modules its config targets, a tensor's shape disagrees with the layer it belongs
/// to, or its <c>target_modules</c> select nothing in the model (an adapter for a different architecture).
/// </summary>
/// <remarks>
/// The load that throws it has changed nothing: the model is exactly as it was. Problems inside the files
/// themselves (truncated, malformed, unsupported options) are <see cref="AdapterFormatException"/> instead; both
/// derive from <see cref="IOException"/>, so <c>catch (IOException)</c> rejects any adapter that cannot be loaded.
/// The message names the file, the offending key or config field, and what the model expected.
/// </remarks>
public sealed class AdapterMismatchException : IOException
{
    /// <summary>Creates the exception for <paramref name="filePath"/>, optionally naming a tensor key or config field.</summary>
    /// <param name="filePath">The adapter file that does not fit; it is named at the start of the message.</param>
    /// <param name="problem">What does not fit and what the model expected.</param>
    /// <param name="key">The tensor key or config field at fault, if one is.</param>
    /// <param name="innerException">The lower-level error that revealed the problem, if any.</param>
    public AdapterMismatchException(string filePath, string problem, string? key = null, Exception? innerException = null)
        : base($"{filePath}: {problem}", innerException)
    {
        FilePath = filePath;
        Key = key;
    }

    /// <summary>The adapter file that does not fit the model.</summary>
    public string FilePath { get; }

    /// <summary>The tensor key (e.g. <c>base_model.model.fc1.lora_A.weight</c>) or config field at fault, or null.</summary>
    public string? Key { get; }
}
