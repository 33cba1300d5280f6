namespace DoraSharp.MiniLM;

/// <summary>
/// What loading the pretrained weights did.
/// </summary>
/// <param name="Parameters">Every module parameter and the ONNX initializer it came from.</param>
/// <param name="Ignored">ONNX initializers that are deliberately not parameters, with the reason.</param>
/// <param name="ParameterCount">Scalars in all parameters of the module.</param>
/// <param name="ParseTime">Reading and parsing the ONNX file (zero when the caller parsed it).</param>
/// <param name="CopyTime">Mapping the graph and copying into the module.</param>
/// <param name="TotalTime">Everything, building the module included.</param>
public sealed record MiniLmLoadReport(
    IReadOnlyList<OnnxParameter> Parameters,
    IReadOnlyList<IgnoredInitializer> Ignored,
    long ParameterCount,
    TimeSpan ParseTime,
    TimeSpan CopyTime,
    TimeSpan TotalTime)
{
    /// <summary>Parameters whose name was established through the graph (MatMul weights), not read off the file.</summary>
    public int MatchedThroughGraph => Parameters.Count(p => p.Transposed);
}
