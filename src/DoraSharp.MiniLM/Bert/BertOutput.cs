using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertOutput</c>: the feed-forward contraction <c>dense</c>, dropout, residual and
/// <c>LayerNorm</c>. (The module, not the result of a forward pass: see <see cref="BertEncoderOutput"/>.)
/// </summary>
public sealed class BertOutput : Module<Tensor, Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> dense;
    private readonly Module<Tensor, Tensor> LayerNorm;
    private readonly Module<Tensor, Tensor> dropout;

    /// <summary>Builds the contraction for <paramref name="config"/>.</summary>
    public BertOutput(BertConfig config) : base(nameof(BertOutput))
    {
        dense = Linear(config.IntermediateSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps);
        dropout = Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(<paramref name="intermediate"/> <c>(N, I)</c>)) + <paramref name="residual"/> <c>(N, C)</c>).</summary>
    public override Tensor forward(Tensor intermediate, Tensor residual)
    {
        using var scope = NewDisposeScope();
        var x = dropout.call(dense.call(intermediate)) + residual;           // (N, C)
        return LayerNorm.call(x).MoveToOuterDisposeScope();
    }
}
