using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>Hugging Face <c>BertLayer</c>: <c>attention</c>, then <c>intermediate</c> and <c>output</c> (the feed-forward block).</summary>
public sealed class BertLayer : Module<Tensor, TokenLayout, Tensor>
{
    private readonly Module<Tensor, TokenLayout, Tensor> attention;
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

    /// <summary>One layer over the packed tokens <paramref name="hidden"/> <c>(N, C)</c> of <paramref name="layout"/>; returns <c>(N, C)</c>.</summary>
    public override Tensor forward(Tensor hidden, TokenLayout layout)
    {
        using var scope = NewDisposeScope();
        var attended = attention.call(hidden, layout);                       // (N, C)
        var expanded = intermediate.call(attended);                          // (N, I)
        return output.call(expanded, attended).MoveToOuterDisposeScope();    // (N, C)
    }
}
