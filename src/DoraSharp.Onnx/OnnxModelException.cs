namespace DoraSharp.Onnx;

/// <summary>
/// A model folder that cannot be used: a file missing or unreadable, an unknown format version, or files that
/// disagree with each other. The message names the file and what was expected.
/// </summary>
public sealed class OnnxModelException : Exception
{
    /// <summary>An error with its message.</summary>
    public OnnxModelException(string message) : base(message) { }

    /// <summary>An error with its message and the exception that caused it.</summary>
    public OnnxModelException(string message, Exception inner) : base(message, inner) { }
}
