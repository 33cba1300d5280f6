using System.Runtime.InteropServices;
using Google.Protobuf;
using Onnx;

namespace DoraSharp.MiniLM.Export;

/// <summary>
/// Edits the package's all-MiniLM-L6-v2 graph with OnnxSharp: its weight initializers take the merged values, and
/// the token-level output <c>last_hidden_state</c> is followed by the sentence-transformers pooling the run was
/// trained with (mean over real tokens), then the classification head and softmax, or the L2 normalisation. The
/// graph's outputs become that one tensor; nodes and initializers it no longer needs (BERT's pooler) are dropped.
/// </summary>
internal static class OnnxGraphEditor
{
    private const int FloatType = (int)TensorProto.Types.DataType.Float;
    private const int Int64Type = (int)TensorProto.Types.DataType.Int64;
    private const string HiddenState = "last_hidden_state";
    private const string Prefix = "dorasharp/";

    /// <summary>
    /// Replaces each float initializer of <paramref name="graph"/> by the weight <paramref name="weights"/> holds for
    /// its parameter (<paramref name="map"/>, in the module's <c>(out, in)</c> layout; transposed back where the
    /// graph stores <c>(in, out)</c>). Returns how many initializers changed. Throws, naming it, when a parameter has
    /// no weight or another shape.
    /// </summary>
    public static int ReplaceWeights(GraphProto graph, IReadOnlyList<OnnxParameter> map, IReadOnlyDictionary<string, float[]> weights)
    {
        var byName = graph.Initializer.ToDictionary(i => i.Name, StringComparer.Ordinal);
        int changed = 0;
        foreach (var p in map)
        {
            if (!weights.TryGetValue(p.ParameterName, out var values))
                throw new ExportException($"dora export: the merged model has no weight '{p.ParameterName}' for ONNX initializer '{p.InitializerName}'.");
            if (values.Length != p.Values.Length)
                throw new ExportException($"dora export: weight '{p.ParameterName}' holds {values.Length} values, ONNX initializer '{p.InitializerName}' [{string.Join(", ", p.OnnxShape)}] {p.Values.Length}.");
            var stored = p.Transposed ? Transpose(values, (int)p.ParameterShape[0], (int)p.ParameterShape[1]) : values;
            if (!stored.AsSpan().SequenceEqual(p.Values)) changed++;
            var init = byName[p.InitializerName];
            init.FloatData.Clear();
            init.RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(stored.AsSpan()));
        }
        return changed;
    }

    /// <summary>
    /// Appends mean pooling and <c>probabilities = softmax(pooled · Wᵀ + b)</c> (<paramref name="headWeight"/> is
    /// <c>(classes, hidden)</c> row-major); the graph's only output becomes <c>probabilities</c> <c>(batch, classes)</c>.
    /// </summary>
    public static void AddClassificationHead(ModelProto model, float[] headWeight, float[] headBias, int classes)
    {
        var graph = model.Graph;
        int hidden = headWeight.Length / classes;
        var pooled = AddMeanPooling(model);
        graph.Initializer.Add(FloatTensor(Prefix + "classifier.weight", [classes, hidden], headWeight));
        graph.Initializer.Add(FloatTensor(Prefix + "classifier.bias", [classes], headBias));
        // The head is SentenceClassifier's nn.Linear: y = x Wᵀ + b, so Gemm with transB=1 on the (out, in) weight.
        graph.Node.Add(Node("Gemm", [pooled, Prefix + "classifier.weight", Prefix + "classifier.bias"], Prefix + "logits", Int("transB", 1)));
        graph.Node.Add(Node("Softmax", [Prefix + "logits"], "probabilities", Int("axis", 1)));
        SetOnlyOutput(graph, "probabilities", classes);
    }

    /// <summary>
    /// Appends mean pooling and sentence-transformers' <c>Normalize</c> (<c>x / max(‖x‖₂, 1e-12)</c>, torch's
    /// <c>F.normalize</c>); the graph's only output becomes <c>embedding</c> <c>(batch, hidden)</c>.
    /// </summary>
    public static void AddNormalizedEmbedding(ModelProto model, int hidden)
    {
        var graph = model.Graph;
        var pooled = AddMeanPooling(model);
        int opset = Opset(model);
        graph.Initializer.Add(FloatTensor(Prefix + "norm_eps", [], [1e-12f]));
        graph.Node.Add(Node("Mul", [pooled, pooled], Prefix + "squares"));
        AddReduceSum(graph, opset, Prefix + "squares", Prefix + "sum_squares", axis: 1, keepDims: true);
        graph.Node.Add(Node("Sqrt", [Prefix + "sum_squares"], Prefix + "norm"));
        graph.Node.Add(Node("Max", [Prefix + "norm", Prefix + "norm_eps"], Prefix + "norm_clamped"));
        graph.Node.Add(Node("Div", [pooled, Prefix + "norm_clamped"], "embedding"));
        SetOnlyOutput(graph, "embedding", hidden);
    }

    /// <summary>
    /// Drops the nodes no output depends on, then the initializers and value infos only they used. Returns the number
    /// of nodes dropped.
    /// </summary>
    public static int Prune(GraphProto graph)
    {
        var needed = new HashSet<string>(graph.Output.Select(o => o.Name), StringComparer.Ordinal);
        var kept = new List<NodeProto>();
        foreach (var node in graph.Node.Reverse())
        {
            if (!node.Output.Any(needed.Contains)) continue;
            kept.Add(node);
            foreach (var input in node.Input) needed.Add(input);
        }
        int dropped = graph.Node.Count - kept.Count;
        kept.Reverse();
        graph.Node.Clear();
        graph.Node.AddRange(kept);
        var initializers = graph.Initializer.Where(i => needed.Contains(i.Name)).ToArray();
        var droppedInitializers = graph.Initializer.Select(i => i.Name).Where(n => !needed.Contains(n)).ToHashSet(StringComparer.Ordinal);
        graph.Initializer.Clear();
        graph.Initializer.AddRange(initializers);
        // Graphs of IR version < 4 also list initializers as inputs; a dropped one would become a required input.
        var inputs = graph.Input.Where(i => !droppedInitializers.Contains(i.Name)).ToArray();
        graph.Input.Clear();
        graph.Input.AddRange(inputs);
        var infos = graph.ValueInfo.Where(v => needed.Contains(v.Name)).ToArray();
        graph.ValueInfo.Clear();
        graph.ValueInfo.AddRange(infos);
        return dropped;
    }

    /// <summary>The default-domain opset the graph was exported with.</summary>
    public static int Opset(ModelProto model) =>
        (int)(model.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx")?.Version
              ?? throw new ExportException("dora export: the package's model.onnx imports no default-domain opset."));

    // sentence-transformers' Pooling(mean): sum(h · mask) / max(sum(mask), 1e-9), as SentencePooling.MeanPool.
    private static string AddMeanPooling(ModelProto model)
    {
        var graph = model.Graph;
        if (!graph.Output.Any(o => o.Name == HiddenState) || !graph.Input.Any(i => i.Name == "attention_mask"))
            throw new ExportException($"dora export: the package's model.onnx has outputs [{string.Join(", ", graph.Output.Select(o => o.Name))}] and inputs [{string.Join(", ", graph.Input.Select(i => i.Name))}]; expected '{HiddenState}' and 'attention_mask'.");
        int opset = Opset(model);
        graph.Initializer.Add(FloatTensor(Prefix + "count_eps", [], [1e-9f]));
        graph.Node.Add(Node("Cast", ["attention_mask"], Prefix + "mask", Int("to", FloatType)));
        if (opset >= 13)
        {
            graph.Initializer.Add(Int64Tensor(Prefix + "axis_2", [2]));
            graph.Node.Add(Node("Unsqueeze", [Prefix + "mask", Prefix + "axis_2"], Prefix + "mask3"));
        }
        else graph.Node.Add(Node("Unsqueeze", [Prefix + "mask"], Prefix + "mask3", Ints("axes", 2)));
        graph.Node.Add(Node("Mul", [HiddenState, Prefix + "mask3"], Prefix + "masked"));
        AddReduceSum(graph, opset, Prefix + "masked", Prefix + "summed", axis: 1, keepDims: false);
        AddReduceSum(graph, opset, Prefix + "mask3", Prefix + "counts", axis: 1, keepDims: false);
        graph.Node.Add(Node("Max", [Prefix + "counts", Prefix + "count_eps"], Prefix + "counts_clamped"));
        graph.Node.Add(Node("Div", [Prefix + "summed", Prefix + "counts_clamped"], Prefix + "pooled"));
        return Prefix + "pooled";
    }

    // ReduceSum takes its axes as an input from opset 13 on, as an attribute before.
    private static void AddReduceSum(GraphProto graph, int opset, string input, string output, int axis, bool keepDims)
    {
        if (opset >= 13)
        {
            var axes = Prefix + "axis_" + axis;
            if (!graph.Initializer.Any(i => i.Name == axes)) graph.Initializer.Add(Int64Tensor(axes, [axis]));
            graph.Node.Add(Node("ReduceSum", [input, axes], output, Int("keepdims", keepDims ? 1 : 0)));
        }
        else graph.Node.Add(Node("ReduceSum", [input], output, Ints("axes", axis), Int("keepdims", keepDims ? 1 : 0)));
    }

    private static void SetOnlyOutput(GraphProto graph, string name, int width)
    {
        // The batch dimension keeps the symbolic name the package's graph gives last_hidden_state's first axis.
        var batch = graph.Output.First(o => o.Name == HiddenState).Type?.TensorType?.Shape?.Dim.FirstOrDefault();
        var output = new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto
            {
                TensorType = new TypeProto.Types.Tensor
                {
                    ElemType = FloatType,
                    Shape = new TensorShapeProto
                    {
                        Dim =
                        {
                            batch?.Clone() ?? new TensorShapeProto.Types.Dimension { DimParam = "batch" },
                            new TensorShapeProto.Types.Dimension { DimValue = width },
                        },
                    },
                },
            },
        };
        graph.Output.Clear();
        graph.Output.Add(output);
    }

    private static NodeProto Node(string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = output.StartsWith(Prefix, StringComparison.Ordinal) ? output : Prefix + output };
        node.Input.AddRange(inputs);
        node.Output.Add(output);
        node.Attribute.AddRange(attributes);
        return node;
    }

    private static AttributeProto Int(string name, long value) =>
        new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private static TensorProto FloatTensor(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = FloatType, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        t.Dims.AddRange(dims);
        return t;
    }

    private static TensorProto Int64Tensor(string name, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = Int64Type, RawData = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())) };
        t.Dims.Add(values.Length);
        return t;
    }

    private static float[] Transpose(float[] values, int rows, int columns)
    {
        var result = new float[values.Length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++)
                result[c * rows + r] = values[r * columns + c];
        return result;
    }
}
