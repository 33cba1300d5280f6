namespace DoraSharp.IO;

/// <summary>
/// An adapter file (or one of its parts, such as a safetensors file) is malformed: it is truncated,
/// its header is not what the format allows, or its data does not agree with its header.
/// </summary>
/// <remarks>
/// Adapter files come from strangers, so every way a file can be wrong ends in this one exception type;
/// callers can catch it to reject the file without also catching bugs. The message names the file, the
/// offending tensor or field, and what was expected. It derives from <see cref="IOException"/> (the BCL's
/// <see cref="InvalidDataException"/> is sealed), so code that treats any failure to load a file alike can
/// catch that.
/// </remarks>
public sealed class AdapterFormatException : IOException
{
    /// <summary>Creates the exception for a problem in the file at <paramref name="filePath"/>.</summary>
    /// <param name="filePath">The file that is malformed; it is named at the start of the message.</param>
    /// <param name="problem">What is wrong and what was expected.</param>
    /// <param name="innerException">The lower-level error that revealed the problem, if any.</param>
    public AdapterFormatException(string filePath, string problem, Exception? innerException = null)
        : base($"{filePath}: {problem}", innerException)
    {
        FilePath = filePath;
    }

    /// <summary>The file that is malformed.</summary>
    public string FilePath { get; }
}
