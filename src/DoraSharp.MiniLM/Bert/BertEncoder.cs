using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM;

/// <summary>
/// A BERT encoder with Hugging Face <c>BertModel</c>'s module tree and names (<c>embeddings</c>,
/// <c>encoder.layer.{i}</c>, <c>pooler</c>), so its state-dict keys are HF's: for example
/// <c>encoder.layer.0.attention.self.query.weight</c>, which PEFT writes as
/// <c>base_model.model.encoder.layer.0.attention.self.query.lora_A.weight</c>.
/// Every Linear sits in a field declared as <c>Module&lt;Tensor, Tensor&gt;</c> and is called through
/// <c>call</c>, so adapters can replace it by reflection.
/// </summary>
public sealed class BertEncoder : Module<Tensor, Tensor, Tensor, BertEncoderOutput>
{
    private readonly Module<Tensor, Tensor, Tensor> embeddings;
    private readonly Module<Tensor, TokenLayout, Tensor> encoder;
    private readonly Module<Tensor, Tensor> pooler;

    /// <summary>Builds the model for <paramref name="config"/> with freshly initialised weights.</summary>
    public BertEncoder(BertConfig config) : base(nameof(BertEncoder))
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertLayerStack(config);
        pooler = new BertPooler(config);
        RegisterComponents();
    }

    /// <summary>The hyper-parameters this model was built with.</summary>
    public BertConfig Config { get; }

    /// <summary>
    /// When true (the default) the layers compute only the real tokens of a padded batch (<see cref="TokenLayout"/>):
    /// the same values at real tokens, less work, and zeros in <see cref="BertEncoderOutput.LastHiddenState"/> at
    /// padding positions, as Hugging Face's unpadding models (ModernBERT) return. False computes every position as
    /// HF's <c>BertModel</c> does, padding rows included, for comparing whole hidden-state tensors with it.
    /// </summary>
    public bool SkipPadding { get; set; } = true;

    /// <summary>
    /// Runs the encoder. All three inputs are <c>(B, T)</c> int64: word-piece ids, 1 for real tokens and 0 for
    /// padding, and segment ids (all 0 for single sentences).
    /// </summary>
    public override BertEncoderOutput forward(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        CheckInputs(inputIds, attentionMask, tokenTypeIds);
        using var scope = NewDisposeScope();
        var hidden = embeddings.call(inputIds, tokenTypeIds);                          // (B, T, C)
        var layout = TokenLayout.For(attentionMask, hidden.dtype, SkipPadding);
        var last = layout.Unpad(encoder.call(layout.Pack(hidden), layout));            // (N, C) -> (B, T, C)
        var pooled = pooler.call(last);                                                // (B, C)
        return new BertEncoderOutput(last.MoveToOuterDisposeScope(), pooled.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The sentence-transformers pipeline of all-MiniLM-L6-v2: last hidden state, its mean over real tokens,
    /// and that mean normalised to unit length. Inputs as for <see cref="forward"/>.
    /// </summary>
    public SentenceEmbeddings EncodeSentences(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var output = call(inputIds, attentionMask, tokenTypeIds);
        var pooled = SentencePooling.MeanPool(output.LastHiddenState, attentionMask);  // (B, C)
        var normalized = SentencePooling.L2Normalize(pooled);                          // (B, C)
        return new SentenceEmbeddings(
            output.LastHiddenState.MoveToOuterDisposeScope(),
            pooled.MoveToOuterDisposeScope(),
            normalized.MoveToOuterDisposeScope());
    }

    /// <summary><see cref="EncodeSentences(Tensor, Tensor, Tensor)"/> on a tokenized batch.</summary>
    public SentenceEmbeddings EncodeSentences(TokenizedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        using var scope = NewDisposeScope();
        var (ids, mask, types) = batch.ToTensors();
        var result = EncodeSentences(ids, mask, types);
        return new SentenceEmbeddings(
            result.LastHiddenState.MoveToOuterDisposeScope(),
            result.Pooled.MoveToOuterDisposeScope(),
            result.Normalized.MoveToOuterDisposeScope());
    }

    private void CheckInputs(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        if (inputIds.dim() != 2)
            throw new ArgumentException(
                $"BertEncoder: input_ids must be (B, T), got shape [{string.Join(", ", inputIds.shape)}].");
        foreach (var (t, name) in new[] { (inputIds, "input_ids"), (attentionMask, "attention_mask"), (tokenTypeIds, "token_type_ids") })
        {
            if (!t.shape.SequenceEqual(inputIds.shape))
                throw new ArgumentException(
                    $"BertEncoder: {name} has shape [{string.Join(", ", t.shape)}], expected input_ids' shape [{string.Join(", ", inputIds.shape)}].");
            if (t.dtype != ScalarType.Int64)
                throw new ArgumentException($"BertEncoder: {name} must be int64, got {t.dtype}.");
        }
    }
}
