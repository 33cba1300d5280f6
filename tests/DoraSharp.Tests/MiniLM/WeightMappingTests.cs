using DoraSharp.MiniLM;
using Onnx;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>OnnxParameterMap and MiniLmWeights.LoadInto on a tiny exported BERT, including what they refuse.</summary>
public sealed class WeightMappingTests
{
    [Fact]
    public void Round_trip_through_an_exported_graph_restores_every_parameter()
    {
        using var source = TinyBert.Create(seed: 1);
        using var target = TinyBert.Create(seed: 2);
        var report = MiniLmWeights.LoadInto(target, TinyBert.Export(source));

        var expected = source.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in target.named_parameters())
            Assert.True(p.eq(expected[name]).all().item<bool>(), $"parameter {name} differs after loading");
        Assert.Equal(expected.Count, report.Parameters.Count);
        Assert.Equal(2 * 6, report.MatchedThroughGraph); // q, k, v, attention.output.dense, intermediate.dense, output.dense per layer
        Assert.Equal(["7", "embeddings.position_ids"], report.Ignored.Select(i => i.InitializerName).Order());
    }

    [Fact]
    public void Matmul_weight_takes_its_name_from_the_bias_of_the_add_it_feeds()
    {
        using var source = TinyBert.Create(seed: 1);
        var map = OnnxParameterMap.Map(TinyBert.Export(source), out _);
        var query = Assert.Single(map, p => p.ParameterName == "encoder.layer.1.attention.self.query.weight");
        Assert.True(query.Transposed);
        Assert.Equal([8L, 8], query.OnnxShape);
        var intermediate = Assert.Single(map, p => p.ParameterName == "encoder.layer.0.intermediate.dense.weight");
        Assert.Equal([8L, 16], intermediate.OnnxShape);   // (in, out) in ONNX
        Assert.Equal([16L, 8], intermediate.ParameterShape); // (out, in) in the Linear
        Assert.Contains("encoder.layer.0.intermediate.dense.bias", intermediate.Evidence);
    }

    [Fact]
    public void Missing_initializer_names_the_unfilled_parameter()
    {
        using var source = TinyBert.Create(seed: 1);
        using var target = TinyBert.Create(seed: 2);
        var onnx = TinyBert.Export(source);
        onnx.Graph.Initializer.Remove(onnx.Graph.Initializer.Single(i => i.Name == "encoder.layer.1.output.LayerNorm.bias"));
        var e = Assert.Throws<InvalidDataException>(() => MiniLmWeights.LoadInto(target, onnx));
        Assert.Contains("found no ONNX initializer: encoder.layer.1.output.LayerNorm.bias", e.Message);
    }

    [Fact]
    public void Shape_mismatch_names_the_parameter_and_both_shapes()
    {
        using var source = TinyBert.Create(seed: 1);
        using var wider = new BertEncoder(TinyBert.Config with { IntermediateSize = 12 });
        var e = Assert.Throws<InvalidDataException>(() => MiniLmWeights.LoadInto(wider, TinyBert.Export(source)));
        Assert.Contains("'encoder.layer.0.intermediate.dense.weight' has shape [12, 8]", e.Message);
        Assert.Contains("gives [16, 8] (stored transposed as [8, 16])", e.Message);
    }

    [Fact]
    public void Unnamed_weight_outside_matmul_plus_bias_is_refused()
    {
        using var source = TinyBert.Create(seed: 1);
        var onnx = TinyBert.Export(source);
        onnx.Graph.Initializer.Add(TinyBert.Floats("555", [2, 2], [1, 2, 3, 4]));
        onnx.Graph.Node.Add(TinyBert.Node("Relu", "Relu_555", ["555"], ["r"]));
        var e = Assert.Throws<InvalidDataException>(() => OnnxParameterMap.Map(onnx, out _));
        Assert.Contains("unnamed float initializer '555' [2, 2] is used by [Relu 'Relu_555' input 0]", e.Message);

        var noBias = TinyBert.Export(source);
        var add = noBias.Graph.Node.First(n => n.OpType == "Add");
        add.Input[0] = "some_activation";
        var e2 = Assert.Throws<InvalidDataException>(() => OnnxParameterMap.Map(noBias, out _));
        Assert.Contains("is not a named bias initializer", e2.Message);
    }

    [Fact]
    public void Gemm_without_transB_and_shifted_position_ids_are_refused()
    {
        using var source = TinyBert.Create(seed: 1);
        var onnx = TinyBert.Export(source);
        onnx.Graph.Node.Single(n => n.OpType == "Gemm").Attribute.Clear();
        var e = Assert.Throws<InvalidDataException>(() => OnnxParameterMap.Map(onnx, out _));
        Assert.Contains("'pooler.dense.weight' is Gemm node 'Gemm_pooler''s B without transB=1", e.Message);

        var shifted = TinyBert.Export(source);
        shifted.Graph.Initializer.Single(i => i.Name == "embeddings.position_ids").Int64Data[0] = 1;
        var e2 = Assert.Throws<InvalidDataException>(() => OnnxParameterMap.Map(shifted, out _));
        Assert.Contains("'embeddings.position_ids'[0] is 1, expected 0", e2.Message);
    }

    [Fact]
    public void Two_initializers_for_one_parameter_are_refused()
    {
        using var source = TinyBert.Create(seed: 1);
        var onnx = TinyBert.Export(source);
        // A second MatMul weight whose Add uses layer 0's query bias.
        onnx.Graph.Initializer.Add(TinyBert.Floats("999", [8, 8], new float[64]));
        onnx.Graph.Node.Add(TinyBert.Node("MatMul", "MatMul_999", ["x", "999"], ["mm_999"]));
        onnx.Graph.Node.Add(TinyBert.Node("Add", "Add_999", ["mm_999", "encoder.layer.0.attention.self.query.bias"], ["y_999"]));
        var e = Assert.Throws<InvalidDataException>(() => OnnxParameterMap.Map(onnx, out _));
        Assert.Contains("parameter 'encoder.layer.0.attention.self.query.weight' is claimed by initializers '100'", e.Message);
    }
}
