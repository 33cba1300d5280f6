using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// Turns a 0/1 attention mask into the additive mask that BERT adds to its attention scores.
/// </summary>
public static class AdditiveAttentionMask
{
    /// <summary>
    /// What masked positions get. all-MiniLM-L6-v2's exported graph computes (1 - mask) * -10000 (the
    /// transformers of its export did; newer ones use the dtype's minimum). Both make the masked
    /// probabilities exactly 0 in float32 (exp(-10000) underflows), and -10000 is what reproduces the
    /// graph on every position, including the rows of padding queries.
    /// </summary>
    public const float MaskedValue = -10000f;

    /// <summary>
    /// (1 - <paramref name="attentionMask"/>) * <see cref="MaskedValue"/>, shaped <c>(B, 1, 1, T)</c> so it
    /// broadcasts over heads and query positions. <paramref name="attentionMask"/> is <c>(B, T)</c> of 0/1.
    /// </summary>
    public static Tensor Build(Tensor attentionMask, ScalarType dtype)
    {
        if (attentionMask.dim() != 2)
            throw new ArgumentException(
                $"AdditiveAttentionMask: attention_mask must be (B, T), got shape [{string.Join(", ", attentionMask.shape)}].");
        using var scope = NewDisposeScope();
        var m = attentionMask.to_type(dtype).unsqueeze(1).unsqueeze(2);     // (B, 1, 1, T)
        return ((1.0f - m) * MaskedValue).MoveToOuterDisposeScope();        // (B, 1, 1, T)
    }
}
