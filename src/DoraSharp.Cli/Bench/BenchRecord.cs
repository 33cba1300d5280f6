using System.Text.Json.Serialization;

namespace DoraSharp.Cli.Bench;

/// <summary>One measurement of `dora bench --json`.</summary>
internal sealed record BenchRecord(
    [property: JsonPropertyName("shape")] string Shape,
    [property: JsonPropertyName("r")] int R,
    [property: JsonPropertyName("tokens")] int Tokens,
    [property: JsonPropertyName("variant")] string Variant,
    [property: JsonPropertyName("phase")] string Phase,
    [property: JsonPropertyName("median_ms")] double MedianMs,
    [property: JsonPropertyName("min_ms")] double MinMs,
    [property: JsonPropertyName("peak_mb")] double? PeakMb,
    [property: JsonPropertyName("step_mb")] double? StepMb = null)
{
    /// <summary>Inference throughput (`--model minilm`): batch sentences per median run, per second.</summary>
    [JsonPropertyName("sentences_per_s")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? SentencesPerSecond { get; init; }

    /// <summary>libtorch intra-op threads of the measurement (`--model minilm`).</summary>
    [JsonPropertyName("threads")]
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? Threads { get; init; }
}

/// <summary>The variants compared: the frozen layer, LoRA, DoRA (fast path) and DoRA computed as PEFT does.</summary>
internal static class Variants
{
    public const string Base = "base", Lora = "lora", Dora = "dora", DoraReference = "dora_reference";
    public static readonly string[] All = [Base, Lora, Dora, DoraReference];
}

/// <summary>The phases timed: a training step, and inference unmerged or merged.</summary>
internal static class Phases
{
    public const string Train = "train", Infer = "infer", InferMerged = "infer_merged";
}
