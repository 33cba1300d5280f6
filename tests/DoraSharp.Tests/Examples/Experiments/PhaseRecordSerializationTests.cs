using System.Text.Json;
using DoraSharp.Examples.Experiments;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>
/// Issue 13, defect 4: a finished phase's <c>phase.json</c> is written and read without reflection-based JSON, as in a
/// trimmed or Native AOT application (this test project turns reflection-based System.Text.Json off for the whole
/// process: JsonSerializerIsReflectionEnabledByDefault).
/// </summary>
public sealed class PhaseRecordSerializationTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "dora-phase-json-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static readonly Dictionary<string, string> Fingerprint = new() { ["r"] = "4", ["lr"] = "0.01" };

    [Fact]
    public void A_phase_record_round_trips_without_reflection()
    {
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = _dir });
        var record = new PhaseRecord(Fingerprint, Seed: 123, Correct: 90, Count: 100, TrainSeconds: 1.5, Losses: [0.5f, float.NaN],
            TrainableParameters: 40, TotalParameters: 400);

        checkpoints.MarkFinished(123, "dora-r4", record);
        var read = checkpoints.Finished(123, "dora-r4", Fingerprint);

        Assert.NotNull(read);
        Assert.Equal(record with { Losses = read.Losses, Fingerprint = read.Fingerprint }, read);
        Assert.Equal(record.Losses, read.Losses);
        Assert.Equal(record.Fingerprint, read.Fingerprint);
        Assert.Equal(new EvaluationResult(90, 100), read.Run.Test);
    }

    [Fact]
    public void The_phase_file_is_indented_json_with_names_as_declared_and_NaN_as_a_literal()
    {
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = _dir });
        checkpoints.MarkFinished(7, "lora-r2", new PhaseRecord(Fingerprint, 7, 1, 2, 0.25, [float.NaN], 3, 4));

        var text = File.ReadAllText(Path.Combine(checkpoints.PhaseDirectory(7, "lora-r2"), ExperimentCheckpoints.PhaseFile));
        using var json = JsonDocument.Parse(text);
        Assert.Equal(7, json.RootElement.GetProperty("Seed").GetInt64());
        Assert.Equal("NaN", json.RootElement.GetProperty("Losses")[0].GetString());
        Assert.False(json.RootElement.TryGetProperty("Run", out _));   // derived, so not written
        Assert.Contains("\n  \"Fingerprint\": {", text);
    }
}
