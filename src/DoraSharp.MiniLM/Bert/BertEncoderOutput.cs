using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// What <see cref="BertEncoder"/> returns, named like HF's <c>BaseModelOutputWithPooling</c>. The caller owns
/// both tensors (dispose this, or let a dispose scope take them).
/// </summary>
/// <param name="LastHiddenState">Hidden states of the last layer, <c>(B, T, C)</c>: the graph's <c>last_hidden_state</c> at real
/// tokens; zeros at padding positions unless <see cref="BertEncoder.SkipPadding"/> is false.</param>
/// <param name="PoolerOutput">tanh(dense(first token)), <c>(B, C)</c>: HF's <c>pooler_output</c>.</param>
public sealed record BertEncoderOutput(Tensor LastHiddenState, Tensor PoolerOutput) : IDisposable
{
    /// <summary>Disposes both tensors.</summary>
    public void Dispose()
    {
        LastHiddenState.Dispose();
        PoolerOutput.Dispose();
    }
}
