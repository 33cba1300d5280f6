using System.Runtime.InteropServices;
using System.Text.Json;
using DoraSharp.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Training;

/// <summary>
/// Issue 13, defect 4: checkpoints are written and read without reflection-based JSON, as in a
/// trimmed or Native AOT application (this test project turns reflection-based System.Text.Json off for the whole
/// process: JsonSerializerIsReflectionEnabledByDefault), and a checkpoint that fails leaves nothing behind.
/// Loading a checkpoint sets the process-wide torch generator, hence the collection.
/// </summary>
[Collection(SeededRuns.Name)]
public sealed class CheckpointSerializationTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "dora-ckpt-json-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private CheckpointStore Store() => new(new CheckpointOptions { Directory = _dir, EverySteps = 1, Keep = 2 });

    private static readonly Dictionary<string, string> Fingerprint = new() { ["r"] = "4", ["lr"] = "0.01" };

    [Fact]
    public void Reflection_based_json_is_off_in_this_test_process()
    {
        // Without this the other tests would not show that the library needs no reflection.
        Assert.False(JsonSerializer.IsReflectionEnabledByDefault);
        Assert.Throws<InvalidOperationException>(() => JsonSerializer.Serialize(new { reflection = true }));
    }

    [Fact]
    public void A_checkpoint_round_trips_without_reflection_NaN_losses_included()
    {
        var model = nn.Linear(3, 2);
        using var optimizer = optim.AdamW(model.parameters(), lr: 0.01);
        model.call(ones(4, 3)).sum().backward();
        optimizer.step();   // Adam moments to save
        var state = new TrainingState { DataOrderSeed = 12_345_678_901UL, Epoch = 2, BatchInEpoch = 3, Step = 17, SkippedSteps = 1, LearningRate = 0.005 };
        float[] losses = [2.5f, float.NaN, 1.25f];

        Store().Save(state, losses, model.parameters().ToList(), optimizer, Fingerprint);

        var saved = Assert.Single(Store().List());
        CheckpointStore.Verify(saved);
        var other = nn.Linear(3, 2);
        using var otherOptimizer = optim.AdamW(other.parameters(), lr: 0.01);
        var manifest = Store().LoadNewest(other.parameters().ToList(), otherOptimizer, Fingerprint);
        Assert.NotNull(manifest);
        Assert.Equal(state, manifest.State);
        Assert.Equal(losses, manifest.Losses);   // NaN == NaN for Assert.Equal on floats
        Assert.Equal(Fingerprint, manifest.Fingerprint);
        Assert.Equal(CheckpointManifest.CurrentFormat, manifest.Format);
        TensorAssert.Equal(model.weight!.detach(), other.weight!.detach(), "weight through the checkpoint");
        // The file is the documented JSON: PascalCase names as declared, NaN as a literal.
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(saved, CheckpointStore.ManifestFile)));
        Assert.Equal(17, json.RootElement.GetProperty("State").GetProperty("Step").GetInt64());
        Assert.Equal("NaN", json.RootElement.GetProperty("Losses")[1].GetString());
    }

    [Fact]
    public void A_checkpoint_that_fails_midway_leaves_no_temporary_directory()
    {
        // A meta tensor has a shape but no data: the state file fails after the temporary directory was made, with
        // libtorch's exception rather than an IOException (as the reflection-disabled serializer threw
        // InvalidOperationException in an AOT app).
        var model = nn.Linear(3, 2);
        using var optimizer = optim.AdamW(model.parameters(), lr: 0.01);
        using var noData = new TorchSharp.Modules.Parameter(empty([2, 3], ScalarType.Float32, device: META));
        var state = new TrainingState { DataOrderSeed = 1, Step = 5 };

        Assert.Throws<ExternalException>(() => Store().Save(state, [1f], [noData], optimizer, Fingerprint));

        Assert.True(Directory.Exists(_dir), "the checkpoint root is made before the failure");
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }
}
