using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertIntermediate</c>: the feed-forward expansion <c>dense</c> followed by the exact (erf)
/// GELU, which HF calls <c>intermediate_act_fn</c>.
/// </summary>
public sealed class BertIntermediate : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> dense;
    private readonly Module<Tensor, Tensor> intermediate_act_fn;

    /// <summary>Builds the expansion for <paramref name="config"/>.</summary>
    public BertIntermediate(BertConfig config) : base(nameof(BertIntermediate))
    {
        dense = Linear(config.HiddenSize, config.IntermediateSize);
        // HF's "gelu" is the exact erf form; the exported graph spells it out as x * (1 + erf(x / sqrt 2)) * 0.5.
        intermediate_act_fn = GELU();
        RegisterComponents();
    }

    /// <summary>GELU(dense(<paramref name="hidden"/>)): <c>(N, C)</c> to <c>(N, I)</c>.</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        return intermediate_act_fn.call(dense.call(hidden)).MoveToOuterDisposeScope(); // (N, I)
    }
}
