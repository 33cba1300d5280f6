using System.Reflection;
using DoraSharp.MiniLM;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>The module tree: Hugging Face's names, and the contract the adapter injector relies on.</summary>
public sealed class BertEncoderStructureTests
{
    private static IEnumerable<string> HuggingFaceBertModelKeys(int layers)
    {
        yield return "embeddings.word_embeddings.weight";
        yield return "embeddings.position_embeddings.weight";
        yield return "embeddings.token_type_embeddings.weight";
        yield return "embeddings.LayerNorm.weight";
        yield return "embeddings.LayerNorm.bias";
        for (int i = 0; i < layers; i++)
            foreach (var m in new[] { "attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
                                      "attention.output.LayerNorm", "intermediate.dense", "output.dense", "output.LayerNorm" })
            {
                yield return $"encoder.layer.{i}.{m}.weight";
                yield return $"encoder.layer.{i}.{m}.bias";
            }
        yield return "pooler.dense.weight";
        yield return "pooler.dense.bias";
    }

    [Fact]
    public void State_dict_keys_are_hugging_face_bert_models_in_its_order()
    {
        using var model = new BertEncoder(BertConfig.AllMiniLmL6V2);
        Assert.Equal(HuggingFaceBertModelKeys(6), model.state_dict().Keys);
        Assert.Empty(model.named_buffers());
        // all-MiniLM-L6-v2's published size.
        Assert.Equal(22_713_216L, model.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void Every_linear_sits_in_a_field_declared_as_module_of_tensor_to_tensor()
    {
        using var model = new BertEncoder(TinyBert.Config);
        int linears = 0;
        foreach (var (path, module) in model.named_modules())
            foreach (var field in module.GetType().GetFields(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public))
                if (field.GetValue(module) is Linear)
                {
                    linears++;
                    Assert.True(field.FieldType == typeof(nn.Module<Tensor, Tensor>),
                        $"{path}.{field.Name} is declared as {field.FieldType.Name}, expected Module<Tensor, Tensor>");
                }
        Assert.Equal(2 * 6 + 1, linears);
        Assert.Contains(model.named_modules(), m => m.name == "encoder.layer" && m.module is ModuleList<nn.Module<Tensor, TokenLayout, Tensor>>);
    }

    private sealed class Counting(nn.Module<Tensor, Tensor> inner) : nn.Module<Tensor, Tensor>("Counting")
    {
        public int Calls;
        public override Tensor forward(Tensor x)
        {
            Calls++;
            return inner.call(x);
        }
    }

    [Fact]
    public void Replacing_a_linear_field_by_reflection_reroutes_the_forward_pass()
    {
        using var model = new BertEncoder(TinyBert.Config);
        model.eval();
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 5, 7, 2 }, [1, 4]);
        var mask = ones_like(ids);
        var types = zeros_like(ids);
        var before = model.call(ids, mask, types).LastHiddenState;

        var selfAttention = model.named_modules().Single(m => m.name == "encoder.layer.1.attention.self").module;
        var field = selfAttention.GetType().GetField("query", BindingFlags.Instance | BindingFlags.NonPublic)!;
        var counting = new Counting((nn.Module<Tensor, Tensor>)field.GetValue(selfAttention)!);
        field.SetValue(selfAttention, counting);

        var after = model.call(ids, mask, types).LastHiddenState;
        Assert.Equal(1, counting.Calls);
        Assert.True(after.eq(before).all().item<bool>());
    }

    [Fact]
    public void Dropout_acts_in_train_mode_only()
    {
        using var model = new BertEncoder(TinyBert.Config);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 5, 7, 2 }, [1, 4]);
        var mask = ones_like(ids);
        var types = zeros_like(ids);
        bool SameTwice() => model.call(ids, mask, types).LastHiddenState.eq(model.call(ids, mask, types).LastHiddenState).all().item<bool>();
        model.eval();
        Assert.True(SameTwice());
        model.train();
        Assert.False(SameTwice());
    }

    [Fact]
    public void Inputs_of_the_wrong_shape_or_type_are_refused()
    {
        using var model = new BertEncoder(TinyBert.Config);
        using var scope = NewDisposeScope();
        var ids = tensor(new long[] { 1, 5, 7, 2 }, [1, 4]);
        var e = Assert.Throws<ArgumentException>(() => model.call(ids, ones(1, 3, dtype: ScalarType.Int64), zeros_like(ids)));
        Assert.Contains("attention_mask has shape [1, 3], expected input_ids' shape [1, 4]", e.Message);
        var f = Assert.Throws<ArgumentException>(() => model.call(ids, ones(1, 4), zeros_like(ids)));
        Assert.Contains("attention_mask must be int64, got Float32", f.Message);
        var g = Assert.Throws<ArgumentException>(() => model.call(ones(1, 17, dtype: ScalarType.Int64), ones(1, 17, dtype: ScalarType.Int64), zeros(1, 17, dtype: ScalarType.Int64)));
        Assert.Contains("sequence length 17 exceeds max_position_embeddings 16", g.Message);
        Assert.Throws<ArgumentException>(() => new BertEncoder(TinyBert.Config with { NumAttentionHeads = 3 }));
    }
}
