using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face <c>BertEmbeddings</c>: word + token-type + absolute position embeddings, then LayerNorm and
/// dropout. Children carry HF's names (<c>word_embeddings</c>, <c>position_embeddings</c>,
/// <c>token_type_embeddings</c>, <c>LayerNorm</c>) so state-dict keys read like HF's.
/// </summary>
public sealed class BertEmbeddings : Module<Tensor, Tensor, Tensor>
{
    // Children are declared by their call signature, not their concrete class, so an adapter injector can
    // swap any of them by reflection (TorchSharp's Embedding and Linear are sealed).
    private readonly Module<Tensor, Tensor> word_embeddings;
    private readonly Module<Tensor, Tensor> position_embeddings;
    private readonly Module<Tensor, Tensor> token_type_embeddings;
    private readonly Module<Tensor, Tensor> LayerNorm;
    private readonly Module<Tensor, Tensor> dropout;
    private readonly int maxPositions;

    /// <summary>Builds the embedding block for <paramref name="config"/> with freshly initialised weights.</summary>
    public BertEmbeddings(BertConfig config) : base(nameof(BertEmbeddings))
    {
        word_embeddings = Embedding(config.VocabSize, config.HiddenSize);
        position_embeddings = Embedding(config.MaxPositionEmbeddings, config.HiddenSize);
        token_type_embeddings = Embedding(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, eps: config.LayerNormEps);
        dropout = Dropout(config.HiddenDropoutProb);
        maxPositions = config.MaxPositionEmbeddings;
        RegisterComponents();
    }

    /// <summary>Embeds token ids <c>(B, T)</c> with their token types <c>(B, T)</c> into <c>(B, T, C)</c>.</summary>
    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        long seqLen = inputIds.shape[1];
        if (seqLen > maxPositions)
            throw new ArgumentException(
                $"BertEmbeddings: sequence length {seqLen} exceeds max_position_embeddings {maxPositions}.");
        using var scope = NewDisposeScope();
        // HF slices its position_ids buffer (0..511); the exported graph does the same (Slice of
        // embeddings.position_ids), so positions always start at 0 whatever the padding.
        var positions = arange(seqLen, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0); // (1, T)
        var x = word_embeddings.call(inputIds) + token_type_embeddings.call(tokenTypeIds);             // (B, T, C)
        x = x + position_embeddings.call(positions);                                                    // (B, T, C)
        x = dropout.call(LayerNorm.call(x));
        return x.MoveToOuterDisposeScope();
    }
}
