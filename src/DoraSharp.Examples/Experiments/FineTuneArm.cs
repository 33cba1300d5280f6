using System.Globalization;

namespace DoraSharp.Examples.Experiments;

/// <summary>One variant an experiment trains and evaluates on every seed: a method and, for adapters, the rank and alpha.</summary>
/// <param name="Method">Frozen, full fine-tuning, LoRA or DoRA.</param>
/// <param name="Rank">The adapter rank r (LoRA and DoRA only, else 0).</param>
/// <param name="Alpha">lora_alpha (LoRA and DoRA only, else 0).</param>
public sealed record FineTuneArm(FineTuneMethod Method, int Rank = 0, double Alpha = 0)
{
    /// <summary>The pretrained model, not fine-tuned.</summary>
    public static FineTuneArm Frozen { get; } = new(FineTuneMethod.Frozen);

    /// <summary>Full fine-tuning.</summary>
    public static FineTuneArm Full { get; } = new(FineTuneMethod.Full);

    /// <summary>A LoRA arm.</summary>
    public static FineTuneArm Lora(int rank, double alpha) => new(FineTuneMethod.Lora, rank, alpha);

    /// <summary>A DoRA arm.</summary>
    public static FineTuneArm Dora(int rank, double alpha) => new(FineTuneMethod.Dora, rank, alpha);

    /// <summary>True for LoRA and DoRA.</summary>
    public bool IsAdapter => Method is FineTuneMethod.Lora or FineTuneMethod.Dora;

    /// <summary>For display: "Base (frozen)", "Full fine-tuning", "LoRA r=4", "DoRA r=4".</summary>
    public string Label => Method switch
    {
        FineTuneMethod.Frozen => "Base (frozen)",
        FineTuneMethod.Full => "Full fine-tuning",
        FineTuneMethod.Lora => string.Create(CultureInfo.InvariantCulture, $"LoRA r={Rank}"),
        FineTuneMethod.Dora => string.Create(CultureInfo.InvariantCulture, $"DoRA r={Rank}"),
        _ => Method.ToString(),
    };

    /// <summary>A short name safe in file names: "frozen", "full", "lora-r4", "dora-r4".</summary>
    public string Slug => Method switch
    {
        FineTuneMethod.Frozen => "frozen",
        FineTuneMethod.Full => "full",
        FineTuneMethod.Lora => string.Create(CultureInfo.InvariantCulture, $"lora-r{Rank}"),
        FineTuneMethod.Dora => string.Create(CultureInfo.InvariantCulture, $"dora-r{Rank}"),
        _ => Method.ToString().ToLowerInvariant(),
    };
}
