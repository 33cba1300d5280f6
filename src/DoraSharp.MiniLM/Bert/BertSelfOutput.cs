using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertSelfOutput</c>: projects the attention context (<c>dense</c>), applies dropout, adds
/// the residual and normalises (<c>LayerNorm</c>).
/// </summary>
public sealed class BertSelfOutput : Module<Tensor, Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> dense;
    private readonly Module<Tensor, Tensor> LayerNorm;
    private readonly Module<Tensor, Tensor> dropout;

    /// <summary>Builds the attention output block for <paramref name="config"/>.</summary>
    public BertSelfOutput(BertConfig config) : base(nameof(BertSelfOutput))
    {
        dense = Linear(config.HiddenSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps);
        dropout = Dropout(config.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <summary>LayerNorm(dropout(dense(<paramref name="context"/>)) + <paramref name="residual"/>), all <c>(N, C)</c>.</summary>
    public override Tensor forward(Tensor context, Tensor residual)
    {
        using var scope = NewDisposeScope();
        var x = dropout.call(dense.call(context)) + residual;                // (N, C)
        return LayerNorm.call(x).MoveToOuterDisposeScope();
    }
}
