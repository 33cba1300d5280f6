using DoraSharp.MiniLM.Classification;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>What early stopping watches on the validation set.</summary>
public enum StoppingMetric
{
    /// <summary>Validation loss (lower is better); for similarity, the in-batch ranking loss.</summary>
    Loss,

    /// <summary>Validation accuracy (higher is better); for similarity, MRR.</summary>
    Accuracy,
}

/// <summary>
/// The settings of `dora train` on a user's data (classification or similarity). Defaults follow
/// <see cref="ClassificationSettings"/> (the measured MiniLM demo) and PEFT's LoRA defaults for BERT-like encoders
/// (r 8, alpha 16, query and value).
/// </summary>
public sealed record TextTrainingOptions
{
    /// <summary>What trains besides the head: DoRA adapters by default.</summary>
    public FineTuningMethod Method { get; init; } = FineTuningMethod.Dora;

    /// <summary>Adapter rank.</summary>
    public int R { get; init; } = 8;

    /// <summary>lora_alpha (scaling alpha / r).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>Adapted Linear modules, Hugging Face BERT names.</summary>
    public IReadOnlyList<string> Targets { get; init; } = ["query", "value"];

    /// <summary>Maximum passes over the training data (early stopping may end sooner).</summary>
    public int Epochs { get; init; } = 3;

    /// <summary>Examples per optimizer step (similarity: pairs per step, so also the number of in-batch negatives + 1).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Learning rate of the encoder's trainable parameters; null = <see cref="DefaultLearningRate"/> of the method.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Learning rate of the classification head (every method); see <see cref="ClassificationSettings.HeadLearningRate"/>.</summary>
    public double HeadLearningRate { get; init; } = 1e-2;

    /// <summary>Truncation length in word pieces, [CLS] and [SEP] included.</summary>
    public int MaxLength { get; init; } = 128;

    /// <summary>Seeds the head and adapter initialisation, dropout, batch order and the validation split.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Epochs without improvement on the validation set before training stops; null = never stop early.</summary>
    public int? Patience { get; init; } = 2;

    /// <summary>What early stopping and the choice of the kept epoch watch.</summary>
    public StoppingMetric Monitor { get; init; } = StoppingMetric.Loss;

    /// <summary>
    /// Scale of the cosine similarities in the multiple-negatives ranking loss (sentence-transformers'
    /// <c>MultipleNegativesRankingLoss(scale=20.0)</c> default).
    /// </summary>
    public double SimilarityScale { get; init; } = 20;

    /// <summary>The encoder learning rate used: <see cref="LearningRate"/> or the method's default.</summary>
    public double EffectiveLearningRate => LearningRate ?? DefaultLearningRate(Method);

    /// <summary>
    /// 1e-3 for LoRA and DoRA (the MiniLM demo's measured rate), 5e-5 for full fine-tuning (the BERT paper's range),
    /// 0 for frozen (nothing in the encoder trains).
    /// </summary>
    public static double DefaultLearningRate(FineTuningMethod method) => method switch
    {
        FineTuningMethod.Full => 5e-5,
        FineTuningMethod.Frozen => 0,
        _ => 1e-3,
    };

    /// <summary>The adapter configuration; <paramref name="modulesToSave"/> are trained in full and saved with it.</summary>
    public LoraConfig AdapterConfig(IReadOnlyList<string>? modulesToSave = null) => new()
    {
        R = R,
        LoraAlpha = Alpha,
        UseDora = Method == FineTuningMethod.Dora,
        TargetModules = Targets,
        ModulesToSave = modulesToSave,
    };

    /// <summary>Throws <see cref="ArgumentException"/> naming the option (as the CLI spells it) and the value.</summary>
    public void Validate()
    {
        static void Require(bool ok, string option, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"{option} {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)} is invalid: {rule}.", option);
        }
        Require(Enum.IsDefined(Method), "--method", Method, "expected frozen, lora, dora or full");
        Require(R >= 1, "--r", R, "expected an integer >= 1");
        Require(Alpha > 0 && double.IsFinite(Alpha), "--alpha", Alpha, "expected a number > 0");
        Require(Targets.Count > 0 && Targets.All(t => t.Length > 0), "--targets", string.Join(",", Targets), "expected module names separated by commas");
        Require(Epochs >= 1, "--epochs", Epochs, "expected an integer >= 1");
        Require(BatchSize >= 1, "--batch", BatchSize, "expected an integer >= 1");
        Require(LearningRate is null || (LearningRate > 0 && double.IsFinite(LearningRate.Value)), "--lr", LearningRate!, "expected a number > 0");
        Require(HeadLearningRate > 0 && double.IsFinite(HeadLearningRate), "--head-lr", HeadLearningRate, "expected a number > 0");
        Require(MaxLength >= 2, "--max-length", MaxLength, "expected an integer >= 2 (room for [CLS] and [SEP])");
        Require(Patience is null or >= 1, "--patience", Patience!, "expected an integer >= 1");
        Require(SimilarityScale > 0 && double.IsFinite(SimilarityScale), "--scale", SimilarityScale, "expected a number > 0");
    }
}
