namespace DoraSharp.MiniLM.Classification;

/// <summary>What trains, besides the classification head, in <see cref="ClassificationExperiment"/>.</summary>
public enum FineTuningMethod
{
    /// <summary>Nothing: the encoder is frozen and only the head learns (a linear probe on fixed embeddings).</summary>
    Frozen,

    /// <summary>LoRA adapters on the targeted Linear layers; the base weights stay frozen.</summary>
    Lora,

    /// <summary>DoRA adapters (LoRA plus one magnitude per output feature) on the targeted Linear layers.</summary>
    Dora,

    /// <summary>Every encoder parameter that reaches the loss (all but the unused BERT pooler).</summary>
    Full,
}

/// <summary>Display and file names of <see cref="FineTuningMethod"/>.</summary>
public static class FineTuningMethods
{
    /// <summary>Every method, in the order the experiment runs and reports them.</summary>
    public static IReadOnlyList<FineTuningMethod> All { get; } =
        [FineTuningMethod.Frozen, FineTuningMethod.Lora, FineTuningMethod.Dora, FineTuningMethod.Full];

    /// <summary>A short lower-case name: <c>frozen</c>, <c>lora</c>, <c>dora</c>, <c>full</c>.</summary>
    public static string Key(this FineTuningMethod method) => method switch
    {
        FineTuningMethod.Frozen => "frozen",
        FineTuningMethod.Lora => "lora",
        FineTuningMethod.Dora => "dora",
        FineTuningMethod.Full => "full",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "FineTuningMethods: unknown method."),
    };

    /// <summary>True for the two methods that train adapters (and so have an adapter to save).</summary>
    public static bool HasAdapter(this FineTuningMethod method) => method is FineTuningMethod.Lora or FineTuningMethod.Dora;
}
