using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>Hugging Face <c>BertLayer</c>: <c>attention</c>, then <c>intermediate</c> and <c>output</c> (the feed-forward block).</summary>
public sealed class BertLayer : Module<Tensor, Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor, Tensor> attention;
    private readonly Module<Tensor, Tensor> intermediate;
    private readonly Module<Tensor, Tensor, Tensor> output;

    /// <summary>Builds one transformer layer for <paramref name="config"/>.</summary>
    public BertLayer(BertConfig config) : base(nameof(BertLayer))
    {
        attention = new BertAttention(config);
        intermediate = new BertIntermediate(config);
        output = new BertOutput(config);
        RegisterComponents();
    }

    /// <summary>One layer over <paramref name="hidden"/> <c>(B, T, C)</c> with mask <c>(B, 1, 1, T)</c>; returns <c>(B, T, C)</c>.</summary>
    public override Tensor forward(Tensor hidden, Tensor additiveMask)
    {
        using var scope = NewDisposeScope();
        var attended = attention.call(hidden, additiveMask);                 // (B, T, C)
        var expanded = intermediate.call(attended);                          // (B, T, I)
        return output.call(expanded, attended).MoveToOuterDisposeScope();    // (B, T, C)
    }
}
