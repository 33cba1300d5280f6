using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The lookup options of a TorchSharp <see cref="Embedding"/> that change what PEFT's LoRA lookup computes.
/// PEFT's <c>Embedding._embed</c> passes the base layer's <c>padding_idx</c>, <c>max_norm</c>,
/// <c>norm_type</c>, <c>scale_grad_by_freq</c> and <c>sparse</c> to <c>F.embedding(x, lora_embedding_A.T)</c>;
/// the adapter follows padding_idx and refuses max_norm and scale_grad_by_freq (sparse only changes the gradient's
/// storage: the adapter's gradients are dense). TorchSharp 0.107 keeps them in the native module's options and exposes
/// none of them, so <see cref="Detect"/> observes them through the module's own forward and backward on a
/// small probe weight (the base weight is neither read nor changed).
/// </summary>
/// <param name="PaddingIdx">Row whose lookups get no gradient, or null.</param>
/// <param name="MaxNorm">Renormalisation bound of looked-up rows, or null.</param>
/// <param name="ScaleGradByFreq">Gradients divided by each index's count in the batch.</param>
internal sealed record EmbeddingOptions(long? PaddingIdx, double? MaxNorm, bool ScaleGradByFreq)
{
    /// <summary>
    /// Finds the options of <paramref name="embedding"/>: swaps a (num_embeddings, 1) float64 probe in as its
    /// weight, looks up every index once plus indices 0 and 1 twice more, and restores the weight.
    /// <list type="bullet">
    /// <item>padding_idx: the one row whose gradient is 0;</item>
    /// <item>scale_grad_by_freq: a row looked up 3 times gets gradient 1 instead of 3;</item>
    /// <item>a sparse base's gradient is made dense before it is read;</item>
    /// <item>max_norm: the probe rows hold 1e30, and a forward with max_norm rescales the rows it reads to
    /// norm max_norm in place (for a one-column row every p-norm is |value|, so norm_type does not matter).</item>
    /// </list>
    /// Not thread-safe with respect to concurrent use of the same module.
    /// </summary>
    public static EmbeddingOptions Detect(Embedding embedding, long numEmbeddings)
    {
        const double Huge = 1e30;
        var original = embedding.get_parameter("weight") ?? embedding.weight
                       ?? throw new ArgumentException("The Embedding has no weight.", nameof(embedding));
        using var scope = NewDisposeScope();
        var probe = new Parameter(full(numEmbeddings, 1, Huge, dtype: ScalarType.Float64), requires_grad: true);
        var repeated = numEmbeddings > 1 ? new long[] { 0, 0, 1, 1 } : new long[] { 0, 0 };
        var indices = cat(new[] { arange(numEmbeddings, dtype: ScalarType.Int64), tensor(repeated) });
        try
        {
            embedding.weight = probe;
            using (enable_grad()) embedding.call(indices).sum().backward();
        }
        finally
        {
            embedding.weight = original;
        }

        var grad = probe.grad!;
        var g = (grad.is_sparse ? grad.to_dense() : grad).reshape(-1);   // (num): lookups per row, scaled
        var zeros = g.eq(0).nonzero().reshape(-1);
        long? paddingIdx = zeros.numel() == 1 ? zeros.item<long>() : null;
        if (zeros.numel() > 1)
            throw new InvalidOperationException($"Probing the Embedding's options found {zeros.numel()} rows without gradient; expected at most one (padding_idx).");
        var counted = paddingIdx == 0 && numEmbeddings > 1 ? 1 : 0;    // a row looked up 3 times
        var scaleGradByFreq = paddingIdx != counted && g[counted].item<double>() == 1;

        var values = probe.detach().reshape(-1);
        double? maxNorm = values.lt(Huge).any().item<bool>() ? values.min().item<double>() : null;
        return new EmbeddingOptions(paddingIdx, maxNorm, scaleGradByFreq);
    }
}
