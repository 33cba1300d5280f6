using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// Where a batch's real tokens are, so that the encoder layers compute on those alone. Everything in a BERT layer
/// except attention works token by token (the projections, GELU, LayerNorm, dropout, residuals), and nothing a real
/// token sees depends on a padding position: attention masks padding keys out (<see cref="AdditiveAttentionMask"/>).
/// The layers therefore run on the packed <c>(N, C)</c> rows of the N real tokens and pad back to <c>(B, T, C)</c>
/// only around the attention product, as Hugging Face's ModernBERT does when it unpads its inputs. Real tokens get
/// the same values as computing every position (up to float rounding: the products have fewer rows); gradients are
/// the same too, since padding positions never reach the loss through masked pooling or attention.
/// A batch without padding, or a layout made with <c>skipPadding: false</c>, keeps every position.
/// </summary>
public sealed class TokenLayout
{
    private readonly Tensor? _index;   // (N) positions of real tokens in the flattened (B·T) batch; null: all of them

    private TokenLayout(Tensor additiveMask, Tensor? index, long batch, long length)
    {
        AdditiveMask = additiveMask;
        _index = index;
        Batch = batch;
        Length = length;
    }

    /// <summary>The additive attention mask <c>(B, 1, 1, T)</c>: 0 on real tokens, <see cref="AdditiveAttentionMask.MaskedValue"/> on padding.</summary>
    public Tensor AdditiveMask { get; }

    /// <summary>B, the number of sequences.</summary>
    public long Batch { get; }

    /// <summary>T, the padded length.</summary>
    public long Length { get; }

    /// <summary>True when only real tokens are computed (the batch has padding and skipping was asked for).</summary>
    public bool SkipsPadding => _index is not null;

    /// <summary>N, the rows of a packed tensor: the real tokens, or B·T when every position is computed.</summary>
    public long Rows => _index?.shape[0] ?? Batch * Length;

    /// <summary>
    /// The layout of <paramref name="attentionMask"/> <c>(B, T)</c> (1 for real tokens, 0 for padding), its additive
    /// mask in <paramref name="dtype"/>. Its tensors belong to the caller's dispose scope.
    /// </summary>
    public static TokenLayout For(Tensor attentionMask, ScalarType dtype, bool skipPadding = true)
    {
        ArgumentNullException.ThrowIfNull(attentionMask);
        var additive = AdditiveAttentionMask.Build(attentionMask, dtype);  // checks (B, T)
        long b = attentionMask.shape[0], t = attentionMask.shape[1];
        Tensor? index = null;
        if (skipPadding)
        {
            var flat = attentionMask.reshape(-1);                            // (B·T)
            // One synchronising read per forward; when nothing is padded the layers keep plain views.
            if (!flat.ne(0).all().item<bool>()) index = flat.nonzero().squeeze(1);   // (N)
        }
        return new TokenLayout(additive, index, b, t);
    }

    /// <summary><c>(B, T, C)</c> to the packed rows <c>(N, C)</c> of the real tokens (a view when every position is kept).</summary>
    public Tensor Pack(Tensor padded)
    {
        ArgumentNullException.ThrowIfNull(padded);
        var rows = padded.reshape(Batch * Length, padded.shape[^1]);              // (B·T, C)
        return _index is null ? rows : rows.index_select(0, _index);              // (N, C)
    }

    /// <summary>Packed rows <c>(N, C)</c> back to <c>(B, T, C)</c>, with zeros at padding positions.</summary>
    public Tensor Unpad(Tensor packed)
    {
        ArgumentNullException.ThrowIfNull(packed);
        var c = packed.shape[^1];
        if (_index is null) return packed.reshape(Batch, Length, c);            // (B, T, C), a view when contiguous
        using var scope = NewDisposeScope();
        // Out of place, so autograd passes the gradient of the real rows back to `packed` (index_select).
        var full = zeros([Batch * Length, c], dtype: packed.dtype, device: packed.device).index_copy(0, _index, packed);
        return full.view(Batch, Length, c).MoveToOuterDisposeScope();           // (B, T, C)
    }
}
