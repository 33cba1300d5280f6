namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// A data file that cannot be used as it is: missing, empty, malformed, not UTF-8, a column absent, an empty text.
/// The message names the file and, where there is one, the line (1-based), the column and the byte offset.
/// It is an <see cref="IOException"/> so that the CLI reports it as a data error (one line, exit code 2).
/// </summary>
public sealed class DataFileException(string message) : IOException(message);
