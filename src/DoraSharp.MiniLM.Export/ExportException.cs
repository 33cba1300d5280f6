namespace DoraSharp.MiniLM.Export;

/// <summary>
/// An export that cannot be done as asked: a bad run folder, an adapter the ONNX graph cannot take, an existing
/// output folder, or an exported model whose outputs differ from TorchSharp's by more than the tolerance. The message
/// names the folder, file or module and what was expected. An <see cref="IOException"/>, so that the CLI reports it
/// as a user error (one line, exit code 2); nothing is left in the output folder.
/// </summary>
public sealed class ExportException : IOException
{
    /// <summary>An error with its message.</summary>
    public ExportException(string message) : base(message) { }

    /// <summary>An error with its message and cause.</summary>
    public ExportException(string message, Exception inner) : base(message, inner) { }
}
