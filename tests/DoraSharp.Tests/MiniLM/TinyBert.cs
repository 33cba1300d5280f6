using DoraSharp.MiniLM;
using Google.Protobuf;
using Onnx;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// A tiny BERT and an ONNX graph holding its weights the way PyTorch's exporter writes all-MiniLM-L6-v2:
/// Linear weights unnamed and transposed, each used as Add(bias, MatMul(x, W)); everything else named;
/// the pooler through Gemm with transB=1; the position-id buffer and a shape constant as int64.
/// </summary>
internal static class TinyBert
{
    public static readonly BertConfig Config = new(
        VocabSize: 50, HiddenSize: 8, NumHiddenLayers: 2, NumAttentionHeads: 2, IntermediateSize: 16,
        MaxPositionEmbeddings: 16, TypeVocabSize: 2, LayerNormEps: 1e-12, HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1);

    public static BertEncoder Create(int seed)
    {
        manual_seed(seed);
        var model = new BertEncoder(Config);
        // LayerNorm starts at weight 1, bias 0 in every model; randomise so that a swapped LayerNorm shows.
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains("LayerNorm")) p.copy_(rand(p.shape));
        return model;
    }

    public static ModelProto Export(BertEncoder model)
    {
        var graph = new GraphProto { Name = "tiny" };
        int unnamed = 100;
        foreach (var (name, p) in model.named_parameters())
        {
            var values = p.detach().contiguous().data<float>().ToArray();
            bool isLinearWeight = name.EndsWith(".weight") && p.dim() == 2 && !name.StartsWith("embeddings.") && !name.StartsWith("pooler.");
            if (isLinearWeight)
            {
                var w = (unnamed++).ToString();
                using var t = p.detach().t().contiguous();
                graph.Initializer.Add(Floats(w, [p.shape[1], p.shape[0]], t.data<float>().ToArray()));
                var bias = name[..^".weight".Length] + ".bias";
                graph.Node.Add(Node("MatMul", $"MatMul_{w}", ["x_" + w, w], ["mm_" + w]));
                graph.Node.Add(Node("Add", $"Add_{w}", [bias, "mm_" + w], ["y_" + w]));
            }
            else
            {
                graph.Initializer.Add(Floats(name, p.shape, values));
            }
        }
        var gemm = Node("Gemm", "Gemm_pooler", ["first", "pooler.dense.weight", "pooler.dense.bias"], ["pooled"]);
        gemm.Attribute.Add(new AttributeProto { Name = "transB", I = 1, Type = AttributeProto.Types.AttributeType.Int });
        graph.Node.Add(gemm);
        graph.Initializer.Add(Int64s("embeddings.position_ids", [1, Config.MaxPositionEmbeddings], Enumerable.Range(0, Config.MaxPositionEmbeddings).Select(i => (long)i).ToArray()));
        graph.Initializer.Add(Int64s("7", [1], [2]));
        graph.Node.Add(Node("Concat", "Concat_7", ["a", "7"], ["shape"]));
        graph.Node.Add(Node("Slice", "Slice_pos", ["embeddings.position_ids", "7"], ["pos"]));
        return new ModelProto { Graph = graph };
    }

    public static NodeProto Node(string op, string name, string[] inputs, string[] outputs)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.AddRange(outputs);
        return n;
    }

    public static TensorProto Floats(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    public static TensorProto Int64s(string name, long[] dims, long[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Int64 };
        t.Dims.AddRange(dims);
        t.Int64Data.AddRange(values);
        return t;
    }
}
