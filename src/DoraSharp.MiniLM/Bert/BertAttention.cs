using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertAttention</c>: <c>self</c> (the multi-head attention) followed by <c>output</c>
/// (projection, residual, LayerNorm).
/// </summary>
public sealed class BertAttention : Module<Tensor, TokenLayout, Tensor>
{
    // '@self' is the C# spelling of a field whose metadata name, and so whose state-dict key, is "self".
    private readonly Module<Tensor, TokenLayout, Tensor> @self;
    private readonly Module<Tensor, Tensor, Tensor> output;

    /// <summary>Builds the attention block for <paramref name="config"/>.</summary>
    public BertAttention(BertConfig config) : base(nameof(BertAttention))
    {
        @self = new BertSelfAttention(config);
        output = new BertSelfOutput(config);
        RegisterComponents();
    }

    /// <summary>Attention over the packed tokens <paramref name="hidden"/> <c>(N, C)</c> of <paramref name="layout"/>; returns <c>(N, C)</c>.</summary>
    public override Tensor forward(Tensor hidden, TokenLayout layout)
    {
        using var scope = NewDisposeScope();
        var context = @self.call(hidden, layout);                            // (N, C)
        return output.call(context, hidden).MoveToOuterDisposeScope();
    }
}
