namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// The knobs of <see cref="ClassificationExperiment"/>. The defaults are sized to finish in about ten minutes on
/// two CPU cores for the whole comparison (see <c>docs/minilm.md</c>), not to reach the best accuracy.
/// </summary>
public sealed record ClassificationSettings
{
    /// <summary>Truncation length in word pieces, [CLS] and [SEP] included. Encoder cost grows with it.</summary>
    public int MaxLength { get; init; } = 48;

    /// <summary>Training examples taken per class (the same subset for every method and seed).</summary>
    public int TrainPerClass { get; init; } = 100;

    /// <summary>Test examples per class; null takes the whole test split.</summary>
    public int? TestPerClass { get; init; }

    /// <summary>Passes over the training subset.</summary>
    public int Epochs { get; init; } = 2;

    /// <summary>Examples per optimizer step.</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>AdamW learning rate of the LoRA/DoRA adapters (high-ish because the default run has only 63 steps).</summary>
    public double AdapterLearningRate { get; init; } = 1e-3;

    /// <summary>
    /// AdamW learning rate of the classification head (every method). At 1e-3 the head alone was still far from
    /// fitting after the default 63 steps (training loss 1.45 of a possible 1.61), at 1e-2 it reached 0.9.
    /// </summary>
    public double HeadLearningRate { get; init; } = 1e-2;

    /// <summary>AdamW learning rate of the encoder in full fine-tuning.</summary>
    public double FullLearningRate { get; init; } = 5e-5;

    /// <summary>AdamW weight decay, for every parameter (0, as Hugging Face's Trainer defaults to).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Adapter rank r.</summary>
    public int R { get; init; } = 8;

    /// <summary>Adapter lora_alpha (scaling alpha / r).</summary>
    public double LoraAlpha { get; init; } = 16;

    /// <summary>Adapted modules, matched as PEFT matches <c>target_modules</c> (Hugging Face BERT names).</summary>
    public IReadOnlyList<string> TargetModules { get; init; } = ["query", "value"];

    /// <summary>One run per method and seed; the seed sets the head and adapter initialisation, dropout and batch order.</summary>
    public IReadOnlyList<int> Seeds { get; init; } = [1, 2];

    /// <summary>The methods to compare.</summary>
    public IReadOnlyList<FineTuningMethod> Methods { get; init; } = FineTuningMethods.All;

    /// <summary>Seed of the training subset's draw; fixed so that every method and seed sees the same examples.</summary>
    public int SubsetSeed { get; init; } = 20240915;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        static void Require(bool ok, string name, object value, string rule)
        {
            if (!ok) throw new ArgumentException($"ClassificationSettings.{name} = {value} is invalid: {rule}.", name);
        }
        Require(MaxLength >= 2, nameof(MaxLength), MaxLength, "must be >= 2 (room for [CLS] and [SEP])");
        Require(TrainPerClass >= 1, nameof(TrainPerClass), TrainPerClass, "must be >= 1");
        Require(TestPerClass is null or >= 1, nameof(TestPerClass), TestPerClass!, "must be >= 1 when set");
        Require(Epochs >= 1, nameof(Epochs), Epochs, "must be >= 1");
        Require(BatchSize >= 1, nameof(BatchSize), BatchSize, "must be >= 1");
        foreach (var (name, lr) in new[] { (nameof(AdapterLearningRate), AdapterLearningRate), (nameof(HeadLearningRate), HeadLearningRate), (nameof(FullLearningRate), FullLearningRate) })
            Require(lr > 0 && double.IsFinite(lr), name, lr, "must be a finite number > 0");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), nameof(WeightDecay), WeightDecay, "must be a finite number >= 0");
        Require(TargetModules.Count > 0, nameof(TargetModules), "[]", "name at least one module");
        Require(Seeds.Count > 0, nameof(Seeds), "[]", "give at least one seed");
        Require(Seeds.Distinct().Count() == Seeds.Count, nameof(Seeds), $"[{string.Join(", ", Seeds)}]", "seeds must differ");
        Require(Methods.Count > 0 && Methods.Distinct().Count() == Methods.Count, nameof(Methods), $"[{string.Join(", ", Methods)}]", "give each method at most once, at least one");
        // R and LoraAlpha are checked by LoraConfig.Validate with PEFT's messages.
        AdapterConfig(useDora: false).Validate();
    }

    /// <summary>The adapter configuration for LoRA (<paramref name="useDora"/> false) or DoRA.</summary>
    public LoraConfig AdapterConfig(bool useDora) => new()
    {
        R = R,
        LoraAlpha = LoraAlpha,
        UseDora = useDora,
        TargetModules = TargetModules,
    };
}
