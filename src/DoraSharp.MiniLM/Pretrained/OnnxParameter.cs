namespace DoraSharp.MiniLM;

/// <summary>
/// One module parameter found in an ONNX graph.
/// </summary>
/// <param name="ParameterName">The state-dict key it fills, e.g. <c>encoder.layer.0.attention.self.query.weight</c>.</param>
/// <param name="InitializerName">The ONNX initializer it comes from (a number for exporter-renamed MatMul weights).</param>
/// <param name="OnnxShape">The initializer's shape as stored.</param>
/// <param name="Values">The initializer's float32 values, row-major in <paramref name="OnnxShape"/>.</param>
/// <param name="Transposed">True for MatMul weights, stored <c>(in, out)</c> while a Linear holds <c>(out, in)</c>.</param>
/// <param name="Evidence">How the name was established, for reports and error messages.</param>
public sealed record OnnxParameter(
    string ParameterName,
    string InitializerName,
    long[] OnnxShape,
    float[] Values,
    bool Transposed,
    string Evidence)
{
    /// <summary>The shape the module parameter has: <see cref="OnnxShape"/>, reversed when <see cref="Transposed"/>.</summary>
    public long[] ParameterShape => Transposed ? OnnxShape.Reverse().ToArray() : OnnxShape;
}

/// <summary>An ONNX initializer that is deliberately not a module parameter, and why.</summary>
/// <param name="InitializerName">The initializer.</param>
/// <param name="Reason">Why no parameter takes it.</param>
public sealed record IgnoredInitializer(string InitializerName, string Reason);
