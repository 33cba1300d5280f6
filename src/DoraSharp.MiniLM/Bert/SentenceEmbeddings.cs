using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// The three stages of an all-MiniLM-L6-v2 sentence embedding. The caller owns the tensors.
/// </summary>
/// <param name="LastHiddenState">Token embeddings of the last layer, <c>(B, T, C)</c>; zeros at padding positions unless
/// <see cref="BertEncoder.SkipPadding"/> is false.</param>
/// <param name="Pooled">Mean over the real tokens, <c>(B, C)</c>.</param>
/// <param name="Normalized"><paramref name="Pooled"/> scaled to unit L2 norm, <c>(B, C)</c>: what
/// sentence-transformers' <c>encode</c> returns for this model.</param>
public sealed record SentenceEmbeddings(Tensor LastHiddenState, Tensor Pooled, Tensor Normalized) : IDisposable
{
    /// <summary>Disposes the three tensors.</summary>
    public void Dispose()
    {
        LastHiddenState.Dispose();
        Pooled.Dispose();
        Normalized.Dispose();
    }
}
