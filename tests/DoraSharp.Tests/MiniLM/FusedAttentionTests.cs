using DoraSharp.MiniLM;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// libtorch's fused scaled_dot_product_attention, as BertSelfAttention calls it, against HF's eager formula
/// (softmax(q·kᵀ/√d + mask)·v) with BERT's additive padding masks: outputs and gradients, on padded batches.
/// </summary>
public sealed class FusedAttentionTests
{
    public static TheoryData<int, int, int, int> Shapes() => new()
    {
        { 2, 12, 7, 32 },    // MiniLM's heads and head size, short padded sentences
        { 3, 4, 48, 16 },
        { 1, 2, 5, 8 },      // a single sentence, no padding
    };

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Fused_attention_matches_the_eager_formula_with_padding_masks(int b, int h, int t, int d)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(11);
        var q = randn([b, h, t, d], generator: generator).requires_grad_(true);
        var k = randn([b, h, t, d], generator: generator).requires_grad_(true);
        var v = randn([b, h, t, d], generator: generator).requires_grad_(true);
        // Row i keeps its first t - i tokens: rows end at different lengths, the first is unpadded.
        var mask = ones(b, t, dtype: ScalarType.Int64);
        for (var i = 1; i < b; i++) mask[i, TensorIndex.Slice(t - i)] = tensor(0L);
        var additive = AdditiveAttentionMask.Build(mask, ScalarType.Float32);
        var gradOut = randn([b, h, t, d], generator: generator);

        var fused = nn.functional.scaled_dot_product_attention(q, k, v, additive);
        var eager = BertSelfAttention.EagerAttention(q, k, v, additive);
        TensorAssert.Close(eager, fused, rtol: 1e-5, atol: 1e-5, "attention output");

        var fusedGrads = autograd.grad([fused], [q, k, v], [gradOut]);
        var eagerGrads = autograd.grad([eager], [q, k, v], [gradOut]);
        for (var i = 0; i < 3; i++) TensorAssert.Close(eagerGrads[i], fusedGrads[i], rtol: 1e-4, atol: 1e-5, $"gradient {i}");
    }

    [Fact]
    public void The_mask_changes_the_fused_result_as_it_does_the_eager_one()
    {
        // Guards the test above against a mask that is silently ignored: with padding, unmasked attention differs.
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var q = randn([2, 2, 6, 8], generator: generator);
        var mask = ones(2, 6, dtype: ScalarType.Int64);
        mask[1, TensorIndex.Slice(3)] = tensor(0L);
        var fused = nn.functional.scaled_dot_product_attention(q, q, q, AdditiveAttentionMask.Build(mask, ScalarType.Float32));
        var unmasked = nn.functional.scaled_dot_product_attention(q, q, q);
        Assert.True((fused[1] - unmasked[1]).abs().max().item<float>() > 1e-3);
        TensorAssert.Close(unmasked[0], fused[0], rtol: 1e-6, atol: 1e-6, "the unpadded row");
    }
}
