using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertSelfAttention</c> (eager path): multi-head scaled dot-product attention with an
/// additive mask. Projections are named <c>query</c>, <c>key</c>, <c>value</c> as in HF.
/// </summary>
public sealed class BertSelfAttention : Module<Tensor, Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> query;
    private readonly Module<Tensor, Tensor> key;
    private readonly Module<Tensor, Tensor> value;
    private readonly Module<Tensor, Tensor> dropout;
    private readonly int numHeads;
    private readonly int headSize;

    /// <summary>Builds the attention projections for <paramref name="config"/>.</summary>
    public BertSelfAttention(BertConfig config) : base(nameof(BertSelfAttention))
    {
        query = Linear(config.HiddenSize, config.HiddenSize);
        key = Linear(config.HiddenSize, config.HiddenSize);
        value = Linear(config.HiddenSize, config.HiddenSize);
        dropout = Dropout(config.AttentionProbsDropoutProb);
        numHeads = config.NumAttentionHeads;
        headSize = config.AttentionHeadSize;
        RegisterComponents();
    }

    /// <summary>
    /// Attends <paramref name="hidden"/> <c>(B, T, C)</c> to itself; <paramref name="additiveMask"/> is
    /// <c>(B, 1, 1, T)</c> with 0 on real tokens and a large negative number on padding. Returns <c>(B, T, C)</c>.
    /// </summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        long b = hidden.shape[0], t = hidden.shape[1];
        var q = SplitHeads(query.call(hidden), b, t);                        // (B, H, T, D)
        var k = SplitHeads(key.call(hidden), b, t);                          // (B, H, T, D)
        var v = SplitHeads(value.call(hidden), b, t);                        // (B, H, T, D)
        // Scores are divided after the product, as HF's eager attention and the exported graph do.
        var scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(headSize);   // (B, H, T, T)
        scores = scores + additiveMask;                                      // (B, H, T, T)
        var probs = dropout.call(functional.softmax(scores, -1));            // (B, H, T, T)
        var context = probs.matmul(v);                                       // (B, H, T, D)
        context = context.permute(0, 2, 1, 3).contiguous().view(b, t, numHeads * headSize); // (B, T, C)
        return context.MoveToOuterDisposeScope();
    }

    private Tensor SplitHeads(Tensor x, long b, long t) =>
        x.view(b, t, numHeads, headSize).permute(0, 2, 1, 3);               // (B, T, C) -> (B, H, T, D)
}
