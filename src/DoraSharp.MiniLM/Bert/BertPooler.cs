using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertPooler</c>: tanh(<c>dense</c>(hidden state of the first token)). all-MiniLM-L6-v2's
/// sentence embedding does not use it (it mean-pools), but HF's BertModel has it and the exported graph
/// computes it, so it is here to keep the module tree and the state dict HF's.
/// </summary>
public sealed class BertPooler : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> dense;
    private readonly Module<Tensor, Tensor> activation;

    /// <summary>Builds the pooler for <paramref name="config"/>.</summary>
    public BertPooler(BertConfig config) : base(nameof(BertPooler))
    {
        dense = Linear(config.HiddenSize, config.HiddenSize);
        activation = Tanh();
        RegisterComponents();
    }

    /// <summary>Pools <paramref name="hidden"/> <c>(B, T, C)</c> to <c>(B, C)</c>.</summary>
    public override Tensor forward(Tensor hidden)
    {
        using var scope = NewDisposeScope();
        var first = hidden.select(1, 0);                                     // (B, C)
        return activation.call(dense.call(first)).MoveToOuterDisposeScope(); // (B, C)
    }
}
