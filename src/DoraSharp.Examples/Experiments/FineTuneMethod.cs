namespace DoraSharp.Examples.Experiments;

/// <summary>How a copy of the pretrained model is adapted in an experiment.</summary>
public enum FineTuneMethod
{
    /// <summary>Not at all: the pretrained model, evaluated as it is (the baseline fine-tuning must beat).</summary>
    Frozen,

    /// <summary>Every parameter trains.</summary>
    Full,

    /// <summary>LoRA adapters on the targeted layers; the base is frozen.</summary>
    Lora,

    /// <summary>DoRA adapters (LoRA plus a trained magnitude per output) on the targeted layers; the base is frozen.</summary>
    Dora,
}
