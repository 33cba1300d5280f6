namespace DoraSharp.Examples.Data;

/// <summary>
/// A data file exists but its contents are not what the format promises: a wrong IDX header,
/// truncated or surplus data, corrupt gzip, labels that do not fit the images.
/// </summary>
/// <remarks>
/// Derives from <see cref="IOException"/> (<see cref="InvalidDataException"/> is sealed) so that
/// callers who already treat unreadable files as I/O failures keep working; <see cref="FilePath"/>
/// names the offending file for callers who want to point at it.
/// </remarks>
public sealed class DatasetFormatException : IOException
{
    /// <summary>Creates the exception; the message reads "<paramref name="filePath"/>: <paramref name="problem"/>; expected <paramref name="expected"/>."</summary>
    /// <param name="filePath">The file whose contents are wrong.</param>
    /// <param name="problem">What was found.</param>
    /// <param name="expected">What the format requires instead.</param>
    /// <param name="inner">The lower-level error, if one caused this (for example a gzip decoder error).</param>
    public DatasetFormatException(string filePath, string problem, string expected, Exception? inner = null)
        : base($"{filePath}: {problem}; expected {expected}.", inner)
    {
        FilePath = filePath;
    }

    /// <summary>The file whose contents are wrong, as it was given to the reader.</summary>
    public string FilePath { get; }
}
