using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertSelfAttention</c>: multi-head scaled dot-product attention with an additive mask.
/// Projections are named <c>query</c>, <c>key</c>, <c>value</c> as in HF. The attention itself is libtorch's fused
/// <c>scaled_dot_product_attention</c> (HF's "sdpa" attention for BERT), which computes softmax(q·kᵀ/√d + mask)·v
/// as the eager formula (<see cref="EagerAttention"/>) does, up to float rounding, without keeping the T×T
/// probabilities (its flash kernel). Training with attention dropout keeps the eager formula (see forward).
/// </summary>
public sealed class BertSelfAttention : Module<Tensor, TokenLayout, Tensor>
{
    private readonly Module<Tensor, Tensor> query;
    private readonly Module<Tensor, Tensor> key;
    private readonly Module<Tensor, Tensor> value;
    private readonly Module<Tensor, Tensor> dropout;
    private readonly int numHeads;
    private readonly int headSize;
    private readonly double dropoutProb;   // the eager path's, read to choose the path

    /// <summary>Builds the attention projections for <paramref name="config"/>.</summary>
    public BertSelfAttention(BertConfig config) : base(nameof(BertSelfAttention))
    {
        query = Linear(config.HiddenSize, config.HiddenSize);
        key = Linear(config.HiddenSize, config.HiddenSize);
        value = Linear(config.HiddenSize, config.HiddenSize);
        dropout = Dropout(config.AttentionProbsDropoutProb);
        numHeads = config.NumAttentionHeads;
        headSize = config.AttentionHeadSize;
        dropoutProb = config.AttentionProbsDropoutProb;
        RegisterComponents();
    }

    /// <summary>
    /// Attends the packed tokens <paramref name="hidden"/> <c>(N, C)</c> of <paramref name="layout"/> to each other,
    /// sequence by sequence, with its additive mask. Returns <c>(N, C)</c>.
    /// </summary>
    public override Tensor forward(Tensor hidden, TokenLayout layout)
    {
        using var scope = NewDisposeScope();
        // The projections run on the N real tokens; only the attention product needs the (B, T) grid. Padding
        // positions enter it as zero rows: masked as keys, and their query rows are dropped by Pack.
        var q = SplitHeads(layout.Unpad(query.call(hidden)));                 // (B, H, T, D)
        var k = SplitHeads(layout.Unpad(key.call(hidden)));                   // (B, H, T, D)
        var v = SplitHeads(layout.Unpad(value.call(hidden)));                 // (B, H, T, D)
        var additiveMask = layout.AdditiveMask;                              // (B, 1, 1, T)
        Tensor context;                                                      // (B, H, T, D)
        if (training && dropoutProb > 0)
        {
            // With dropout libtorch's fused call falls back to its math kernel: no faster than the eager formula in
            // `dora bench --model minilm` training (docs/performance.md), so training keeps HF's eager path and its
            // dropout draws exactly as before.
            var scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(headSize) + additiveMask;   // (B, H, T, T)
            context = dropout.call(functional.softmax(scores, -1)).matmul(v);
        }
        else
        {
            // The float mask is added to the scaled scores, as HF's sdpa path passes it.
            context = functional.scaled_dot_product_attention(q, k, v, additiveMask);
        }
        var merged = context.transpose(1, 2).reshape(layout.Batch, layout.Length, numHeads * headSize);   // (B, T, C)
        return layout.Pack(merged).MoveToOuterDisposeScope();                // (N, C)
    }

    /// <summary>
    /// HF's eager attention on heads split as <c>(B, H, T, D)</c>, without dropout: softmax(q·kᵀ / √d + mask)·v, the
    /// scores divided after the product as HF's eager path and the exported ONNX graph do. The reference the fused
    /// path is tested against.
    /// </summary>
    internal static Tensor EagerAttention(Tensor q, Tensor k, Tensor v, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        var scores = q.matmul(k.transpose(-1, -2)) / Math.Sqrt(q.shape[^1]) + additiveMask;   // (B, H, T, T)
        return functional.softmax(scores, -1).matmul(v).MoveToOuterDisposeScope();              // (B, H, T, D)
    }

    private Tensor SplitHeads(Tensor x) =>
        x.view(x.shape[0], x.shape[1], numHeads, headSize).permute(0, 2, 1, 3);   // (B, T, C) -> (B, H, T, D)
}
