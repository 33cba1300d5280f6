using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// sentence-transformers' pooling for all-MiniLM-L6-v2: mean over real tokens, then L2 normalisation.
/// </summary>
public static class SentencePooling
{
    /// <summary>
    /// sentence-transformers' <c>Pooling(pooling_mode_mean_tokens)</c>: sum of token embeddings times the mask,
    /// divided by clamp(sum of the mask, min 1e-9). <paramref name="tokenEmbeddings"/> is <c>(B, T, C)</c>,
    /// <paramref name="attentionMask"/> <c>(B, T)</c> of 0/1; returns <c>(B, C)</c>.
    /// </summary>
    public static Tensor MeanPool(Tensor tokenEmbeddings, Tensor attentionMask)
    {
        if (tokenEmbeddings.dim() != 3 || attentionMask.dim() != 2
            || tokenEmbeddings.shape[0] != attentionMask.shape[0] || tokenEmbeddings.shape[1] != attentionMask.shape[1])
            throw new ArgumentException(
                $"SentencePooling.MeanPool: expected token embeddings (B, T, C) and mask (B, T), got " +
                $"[{string.Join(", ", tokenEmbeddings.shape)}] and [{string.Join(", ", attentionMask.shape)}].");
        using var scope = NewDisposeScope();
        var mask = attentionMask.to_type(tokenEmbeddings.dtype).unsqueeze(-1);           // (B, T, 1)
        var summed = (tokenEmbeddings * mask).sum(1);                                     // (B, C)
        var counts = mask.sum(1).clamp_min(1e-9);                                         // (B, 1)
        return (summed / counts).MoveToOuterDisposeScope();                               // (B, C)
    }

    /// <summary>
    /// sentence-transformers' <c>Normalize</c> (torch's <c>F.normalize(p=2, dim=1)</c>): each row divided by
    /// max(its L2 norm, 1e-12). <paramref name="embeddings"/> is <c>(B, C)</c>; returns <c>(B, C)</c>.
    /// </summary>
    public static Tensor L2Normalize(Tensor embeddings)
    {
        if (embeddings.dim() != 2)
            throw new ArgumentException(
                $"SentencePooling.L2Normalize: expected (B, C), got [{string.Join(", ", embeddings.shape)}].");
        using var scope = NewDisposeScope();
        var norms = embeddings.norm(1, keepdim: true).clamp_min(1e-12);                  // (B, 1)
        return (embeddings / norms).MoveToOuterDisposeScope();                            // (B, C)
    }
}
