using System.Runtime.InteropServices;
using Onnx;

namespace DoraSharp.MiniLM;

/// <summary>
/// Names the float initializers of a PyTorch-exported BERT ONNX graph after the module parameters they are.
/// The exporter keeps Hugging Face names for biases, embeddings and LayerNorms, but renames the Linear
/// weights it feeds to MatMul to bare numbers; those are named through the graph: in
/// <c>y = Add(bias, MatMul(x, W))</c> the bias is named (<c>....query.bias</c>), so <c>W</c> is
/// <c>....query.weight</c>, stored transposed <c>(in, out)</c>.
/// </summary>
public static class OnnxParameterMap
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;
    private const int Int64Type = (int)TensorProto.Types.DataType.Int64;

    /// <summary>
    /// Maps every initializer of <paramref name="model"/>: float ones to parameters (returned), integer
    /// ones to <paramref name="ignored"/> with their reason. Throws, naming the initializer, on anything it cannot
    /// explain: an unnamed float weight not used as MatMul(x, W) + named bias, two initializers for one
    /// parameter, or an integer initializer that is neither the position-id buffer nor a shape constant.
    /// </summary>
    public static IReadOnlyList<OnnxParameter> Map(ModelProto model, out IReadOnlyList<IgnoredInitializer> ignored)
    {
        ArgumentNullException.ThrowIfNull(model);
        var graph = model.Graph ?? throw new ArgumentException("OnnxParameterMap: the model has no graph.");
        var consumers = new Dictionary<string, List<(NodeProto Node, int Slot)>>(StringComparer.Ordinal);
        foreach (var node in graph.Node)
            for (int slot = 0; slot < node.Input.Count; slot++)
            {
                if (!consumers.TryGetValue(node.Input[slot], out var list)) consumers[node.Input[slot]] = list = [];
                list.Add((node, slot));
            }
        var initializerNames = graph.Initializer.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);

        var parameters = new List<OnnxParameter>();
        var skipped = new List<IgnoredInitializer>();
        foreach (var init in graph.Initializer)
        {
            var uses = consumers.GetValueOrDefault(init.Name) ?? [];
            if (init.DataType == Int64Type)
            {
                skipped.Add(new IgnoredInitializer(init.Name, ExplainInteger(init, uses)));
                continue;
            }
            if (init.DataType != FloatType)
                throw new InvalidDataException(
                    $"OnnxParameterMap: initializer '{init.Name}' has ONNX data type {init.DataType}, expected float32 ({FloatType}) or int64 ({Int64Type}).");

            if (IsParameterName(init.Name))
                parameters.Add(Named(init, uses));
            else
                parameters.Add(ThroughMatMul(init, uses, consumers, initializerNames));
        }

        var duplicate = parameters.GroupBy(p => p.ParameterName).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new InvalidDataException(
                $"OnnxParameterMap: parameter '{duplicate.Key}' is claimed by initializers " +
                $"{string.Join(" and ", duplicate.Select(p => $"'{p.InitializerName}' ({p.Evidence})"))}; expected one.");
        ignored = skipped;
        return parameters;
    }

    private static bool IsParameterName(string name) =>
        name.EndsWith(".weight", StringComparison.Ordinal) || name.EndsWith(".bias", StringComparison.Ordinal);

    private static OnnxParameter Named(TensorProto init, List<(NodeProto Node, int Slot)> uses)
    {
        // A named weight used as Gemm's B is (out, in) only with transB=1; the pooler's is. Refuse the other case
        // rather than load it silently transposed.
        foreach (var (node, slot) in uses)
            if (node.OpType == "Gemm" && slot == 1 && !node.Attribute.Any(a => a.Name == "transB" && a.I == 1))
                throw new InvalidDataException(
                    $"OnnxParameterMap: '{init.Name}' is Gemm node '{node.Name}''s B without transB=1; expected (out, in) storage.");
        return new OnnxParameter(init.Name, init.Name, [.. init.Dims], Floats(init), Transposed: false, "named in the graph");
    }

    private static OnnxParameter ThroughMatMul(
        TensorProto init,
        List<(NodeProto Node, int Slot)> uses,
        Dictionary<string, List<(NodeProto Node, int Slot)>> consumers,
        HashSet<string> initializerNames)
    {
        string Fail(string what) =>
            $"OnnxParameterMap: unnamed float initializer '{init.Name}' [{string.Join(", ", init.Dims)}] {what}; " +
            "expected it to be W in Add(<name>.bias, MatMul(x, W)).";

        if (init.Dims.Count != 2)
            throw new InvalidDataException(Fail($"has {init.Dims.Count} dimensions"));
        if (uses.Count != 1 || uses[0].Node.OpType != "MatMul" || uses[0].Slot != 1)
            throw new InvalidDataException(Fail(
                $"is used by [{string.Join(", ", uses.Select(u => $"{u.Node.OpType} '{u.Node.Name}' input {u.Slot}"))}]"));
        var matMul = uses[0].Node;
        var next = consumers.GetValueOrDefault(matMul.Output[0]) ?? [];
        if (next.Count != 1 || next[0].Node.OpType != "Add")
            throw new InvalidDataException(Fail(
                $"feeds MatMul '{matMul.Name}', whose output goes to [{string.Join(", ", next.Select(u => $"{u.Node.OpType} '{u.Node.Name}'"))}] instead of one Add"));
        var add = next[0].Node;
        var bias = add.Input[1 - next[0].Slot];
        if (!initializerNames.Contains(bias) || !bias.EndsWith(".bias", StringComparison.Ordinal))
            throw new InvalidDataException(Fail(
                $"feeds MatMul '{matMul.Name}' then Add '{add.Name}', whose other input '{bias}' is not a named bias initializer"));
        var name = bias[..^".bias".Length] + ".weight";
        return new OnnxParameter(name, init.Name, [.. init.Dims], Floats(init), Transposed: true,
            $"MatMul '{matMul.Name}' -> Add '{add.Name}' with '{bias}'");
    }

    private static string ExplainInteger(TensorProto init, List<(NodeProto Node, int Slot)> uses)
    {
        if (init.Name == "embeddings.position_ids")
        {
            // HF's position-id buffer (non-persistent in newer transformers); BertEmbeddings computes 0..T-1 itself,
            // which is only right if the buffer is exactly that.
            var values = Int64s(init);
            for (int i = 0; i < values.Length; i++)
                if (values[i] != i)
                    throw new InvalidDataException(
                        $"OnnxParameterMap: 'embeddings.position_ids'[{i}] is {values[i]}, expected {i}; positions must be 0..n-1.");
            return $"HF's position-id buffer 0..{values.Length - 1}, recomputed by BertEmbeddings";
        }
        // The exporter folds reshape targets (head count 12, head size 32, hidden 384) and slice bounds into tiny
        // int64 initializers; they feed only shape arithmetic.
        var shapeOps = new HashSet<string>(StringComparer.Ordinal) { "Concat", "Slice", "Reshape", "Unsqueeze", "Gather" };
        if (init.Dims.Aggregate(1L, (a, d) => a * d) <= 8 && uses.Count > 0 && uses.All(u => shapeOps.Contains(u.Node.OpType)))
            return $"shape constant [{string.Join(", ", Int64s(init))}] of {string.Join(", ", uses.Select(u => u.Node.OpType).Distinct())}";
        throw new InvalidDataException(
            $"OnnxParameterMap: int64 initializer '{init.Name}' [{string.Join(", ", init.Dims)}] is used by " +
            $"[{string.Join(", ", uses.Select(u => $"{u.Node.OpType} '{u.Node.Name}'"))}]; expected the position ids or a shape constant.");
    }

    private static float[] Floats(TensorProto init)
    {
        long count = init.Dims.Aggregate(1L, (a, d) => a * d);
        float[] values = init.RawData.Length > 0
            ? LittleEndian<float>(init.RawData.Span, init.Name)
            : init.FloatData.ToArray();
        if (values.Length != count)
            throw new InvalidDataException(
                $"OnnxParameterMap: initializer '{init.Name}' holds {values.Length} floats, expected {count} for shape [{string.Join(", ", init.Dims)}].");
        return values;
    }

    private static long[] Int64s(TensorProto init) =>
        init.RawData.Length > 0 ? LittleEndian<long>(init.RawData.Span, init.Name) : init.Int64Data.ToArray();

    private static T[] LittleEndian<T>(ReadOnlySpan<byte> raw, string name) where T : unmanaged
    {
        // ONNX raw_data is little-endian whatever the machine; reinterpreting is only right on a little-endian one.
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException($"OnnxParameterMap: reading '{name}' needs a little-endian machine.");
        return MemoryMarshal.Cast<byte, T>(raw).ToArray();
    }
}
