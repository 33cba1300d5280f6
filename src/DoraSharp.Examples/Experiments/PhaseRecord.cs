using System.Text.Json.Serialization;
using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>A finished phase's results as <c>phase.json</c> holds them.</summary>
internal sealed record PhaseRecord(Dictionary<string, string> Fingerprint, long Seed, long Correct, long Count, double TrainSeconds,
    float[] Losses, long TrainableParameters, long TotalParameters)
{
    /// <summary>The run these fields describe (derived from them, so not written to the file).</summary>
    [JsonIgnore]
    public SeedRun Run => new(Seed, new EvaluationResult(Correct, Count), TimeSpan.FromSeconds(TrainSeconds), Losses);
}
