namespace DoraSharp.MiniLM;

/// <summary>
/// The hyper-parameters of a BERT encoder, named after Hugging Face's <c>BertConfig</c> fields.
/// </summary>
/// <param name="VocabSize">Rows of the word-embedding table (HF <c>vocab_size</c>).</param>
/// <param name="HiddenSize">Width of every hidden state (HF <c>hidden_size</c>).</param>
/// <param name="NumHiddenLayers">Number of transformer layers (HF <c>num_hidden_layers</c>).</param>
/// <param name="NumAttentionHeads">Attention heads per layer; must divide <paramref name="HiddenSize"/>.</param>
/// <param name="IntermediateSize">Width of the feed-forward block (HF <c>intermediate_size</c>).</param>
/// <param name="MaxPositionEmbeddings">Longest sequence the position table covers (HF <c>max_position_embeddings</c>).</param>
/// <param name="TypeVocabSize">Rows of the token-type (segment) table (HF <c>type_vocab_size</c>).</param>
/// <param name="LayerNormEps">Epsilon of every LayerNorm (HF <c>layer_norm_eps</c>).</param>
/// <param name="HiddenDropoutProb">Dropout after embeddings, attention output and feed-forward output.</param>
/// <param name="AttentionProbsDropoutProb">Dropout on the attention probabilities.</param>
public sealed record BertConfig(
    int VocabSize,
    int HiddenSize,
    int NumHiddenLayers,
    int NumAttentionHeads,
    int IntermediateSize,
    int MaxPositionEmbeddings,
    int TypeVocabSize,
    double LayerNormEps,
    double HiddenDropoutProb,
    double AttentionProbsDropoutProb)
{
    /// <summary>
    /// sentence-transformers/all-MiniLM-L6-v2 (its <c>config.json</c>): 6 layers, hidden 384, 12 heads,
    /// intermediate 1536, the uncased BERT vocabulary of 30,522 word pieces.
    /// </summary>
    public static BertConfig AllMiniLmL6V2 { get; } = new(
        VocabSize: 30522,
        HiddenSize: 384,
        NumHiddenLayers: 6,
        NumAttentionHeads: 12,
        IntermediateSize: 1536,
        MaxPositionEmbeddings: 512,
        TypeVocabSize: 2,
        LayerNormEps: 1e-12,
        HiddenDropoutProb: 0.1,
        AttentionProbsDropoutProb: 0.1);

    /// <summary>Width of one attention head: <see cref="HiddenSize"/> / <see cref="NumAttentionHeads"/>.</summary>
    public int AttentionHeadSize => HiddenSize / NumAttentionHeads;

    /// <summary>Throws when a field is out of range or the heads do not divide the hidden size.</summary>
    public void Validate()
    {
        Positive(VocabSize, nameof(VocabSize));
        Positive(HiddenSize, nameof(HiddenSize));
        Positive(NumHiddenLayers, nameof(NumHiddenLayers));
        Positive(NumAttentionHeads, nameof(NumAttentionHeads));
        Positive(IntermediateSize, nameof(IntermediateSize));
        Positive(MaxPositionEmbeddings, nameof(MaxPositionEmbeddings));
        Positive(TypeVocabSize, nameof(TypeVocabSize));
        if (HiddenSize % NumAttentionHeads != 0)
            throw new ArgumentException(
                $"BertConfig: HiddenSize {HiddenSize} must be a multiple of NumAttentionHeads {NumAttentionHeads}.");
        if (!(LayerNormEps > 0))
            throw new ArgumentException($"BertConfig: LayerNormEps must be > 0, got {LayerNormEps}.");
        Probability(HiddenDropoutProb, nameof(HiddenDropoutProb));
        Probability(AttentionProbsDropoutProb, nameof(AttentionProbsDropoutProb));
    }

    private static void Positive(int value, string name)
    {
        if (value <= 0) throw new ArgumentException($"BertConfig: {name} must be > 0, got {value}.");
    }

    private static void Probability(double value, string name)
    {
        if (!(value >= 0 && value < 1))
            throw new ArgumentException($"BertConfig: {name} must be in [0, 1), got {value}.");
    }
}
