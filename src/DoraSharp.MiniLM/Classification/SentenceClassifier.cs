using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// all-MiniLM-L6-v2 with a linear classification head on its mean-pooled sentence embedding (the
/// sentence-transformers pooling, not BERT's pooler): logits = classifier(MeanPool(last_hidden_state)).
/// Adapters are put on <see cref="Encoder"/> itself, so their paths and keys are those of Hugging Face's
/// <c>BertModel</c> (<c>encoder.layer.0.attention.self.query</c>), as PEFT writes them for that model.
/// </summary>
public sealed class SentenceClassifier : Module<Tensor, Tensor, Tensor, Tensor>
{
    private readonly BertEncoder bert;
    private readonly Module<Tensor, Tensor> classifier;

    /// <summary>
    /// Puts a freshly initialised head (<c>nn.Linear(hidden, classes)</c>, PyTorch's default init from the
    /// global generator) on <paramref name="encoder"/>, which this module then owns.
    /// </summary>
    public SentenceClassifier(BertEncoder encoder, int classes) : base(nameof(SentenceClassifier))
    {
        ArgumentNullException.ThrowIfNull(encoder);
        bert = encoder;
        classifier = CreateHead(encoder.Config, classes);
        RegisterComponents();
    }

    /// <summary>A new head <c>Linear(hidden, classes)</c>, initialised from the global generator as this class does.</summary>
    public static Module<Tensor, Tensor> CreateHead(BertConfig config, int classes)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (classes < 2) throw new ArgumentOutOfRangeException(nameof(classes), $"SentenceClassifier: classes must be >= 2, got {classes}.");
        return Linear(config.HiddenSize, classes);
    }

    /// <summary>The encoder (adapt this with <c>LoraModel.Wrap</c> to get Hugging Face BertModel paths).</summary>
    public BertEncoder Encoder => bert;

    /// <summary>The head, <c>Linear(hidden, classes)</c>.</summary>
    public Module<Tensor, Tensor> Head => classifier;

    /// <summary>Class logits <c>(B, classes)</c> for int64 inputs <c>(B, T)</c> as <see cref="BertEncoder.forward"/> takes them.</summary>
    public override Tensor forward(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds)
    {
        using var scope = NewDisposeScope();
        var output = bert.call(inputIds, attentionMask, tokenTypeIds);
        var pooled = SentencePooling.MeanPool(output.LastHiddenState, attentionMask);  // (B, C)
        return classifier.call(pooled).MoveToOuterDisposeScope();                       // (B, classes)
    }
}
