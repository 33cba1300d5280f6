using DoraSharp.Examples.Experiments;
using DoraSharp.Training;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>The worked example with the CNN: every arm runs, Conv2d layers get the adapters, and its checkpoints are its own.</summary>
[Collection(SeededRuns.Name)]
public sealed class FineTuneExperimentCnnTests(TinyCnnExperiment tiny) : IClassFixture<TinyCnnExperiment>
{
    [Fact]
    public void All_four_arms_run_on_the_cnn_with_its_parameter_counts()
    {
        Assert.Equal(new[] { "Base (frozen)", "Full fine-tuning", "LoRA r=4", "DoRA r=4" }, tiny.Result.Arms.Select(a => a.Arm.Label));
        // Full: 9,098. LoRA r=4: conv1 4·9 + 8·4, conv2 4·72 + 16·4, fc 4·784 + 10·4 = 3,596. DoRA adds 8 + 16 + 10 magnitudes.
        var expected = new (long Trainable, long Total)[] { (0, 9_098), (9_098, 9_098), (3_596, 12_694), (3_630, 12_728) };
        Assert.Equal(expected, tiny.Result.Arms.Select(a => (a.TrainableParameters, a.TotalParameters)));
        Assert.Equal(9_098, tiny.Result.Pretraining.Parameters);
        // 640 images in batches of 64, two epochs: 20 steps per trained arm, every loss finite.
        Assert.All(tiny.Result.Arms.Skip(1).SelectMany(a => a.Runs), r => Assert.Equal(20, r.Losses.Count));
        Assert.All(tiny.Result.Arms.SelectMany(a => a.Runs).SelectMany(r => r.Losses), l => Assert.True(double.IsFinite(l)));
        Assert.All(tiny.Result.Arms, a => Assert.Equal(TinyExperiment.TestImages, a.EvaluatedImages));
    }

    [Fact]
    public void The_conv2d_layers_and_the_classifier_get_the_adapters()
    {
        Assert.All(tiny.Trained, t => Assert.Equal(typeof(MnistCnn), t.Model));
        var adapted = tiny.Trained.Where(t => t.Arm.IsAdapter).ToList();
        Assert.Equal(2, adapted.Count);
        Assert.All(adapted, t => Assert.Equal(new Dictionary<string, Type>
        {
            ["conv1"] = typeof(LoraConv2d),
            ["conv2"] = typeof(LoraConv2d),
            ["fc"] = typeof(LoraLinear),
        }, t.Adapters));
    }

    [Fact]
    public void Fine_tuning_recovers_from_the_turn_that_the_frozen_base_does_not_survive()
    {
        var accuracy = tiny.Result.Arms.ToDictionary(a => a.Arm.Method, a => a.Accuracy.Mean);
        Assert.True(tiny.Result.Pretraining.Accuracy.Mean > 0.5, $"pretraining on 640 digits: {tiny.Result.Pretraining.Accuracy.Mean:P1}");
        Assert.True(accuracy[FineTuneMethod.Frozen] < 0.25, $"frozen base on turned digits: {accuracy[FineTuneMethod.Frozen]:P1}");
        foreach (var method in new[] { FineTuneMethod.Full, FineTuneMethod.Lora, FineTuneMethod.Dora })
            Assert.True(accuracy[method] > accuracy[FineTuneMethod.Frozen] + 0.1,
                $"{method}: {accuracy[method]:P1} against the frozen base's {accuracy[FineTuneMethod.Frozen]:P1}");
    }

    [Fact]
    public void The_same_settings_give_the_same_numbers()
    {
        var again = FineTuneExperiment.Run(tiny.Data, tiny.Settings, tiny.Arms);
        Assert.Equal(tiny.Result.Pretraining.Runs.Select(r => r.Test), again.Pretraining.Runs.Select(r => r.Test));
        foreach (var (a, b) in tiny.Result.Arms.Zip(again.Arms))
        {
            Assert.Equal(a.Runs.Select(r => r.Test), b.Runs.Select(r => r.Test));
            Assert.Equal(a.Runs.SelectMany(r => r.Losses), b.Runs.SelectMany(r => r.Losses));
        }
    }

    [Fact]
    public void A_cnn_run_never_resumes_from_an_mlp_runs_checkpoints()
    {
        using var dir = new TempDirectory();
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = dir.Path });
        // The MLP's pretraining finishes and is recorded; the CNN over the same directory must refuse it, naming the model.
        FineTuneExperiment.Run(tiny.Data, tiny.Settings with { Model = ExperimentModel.Mlp }, [FineTuneArm.Frozen], checkpoints: checkpoints);
        var e = Assert.Throws<CheckpointMismatchException>(() => FineTuneExperiment.Run(tiny.Data, tiny.Settings, [FineTuneArm.Frozen], checkpoints: checkpoints));
        Assert.Contains("model: checkpoint Mlp, run Cnn", e.Message);
    }

    [Fact]
    public void A_finished_cnn_phase_is_refused_to_an_mlp_run_by_its_record()
    {
        using var dir = new TempDirectory();
        var checkpoints = new ExperimentCheckpoints(new CheckpointOptions { Directory = dir.Path });
        FineTuneExperiment.Run(tiny.Data, tiny.Settings, [FineTuneArm.Frozen], checkpoints: checkpoints);
        // Without its parameter checkpoints, only the finished phase's record (phase.json) can tell the models apart.
        foreach (var sub in Directory.GetDirectories(Path.Combine(dir.Path, "seed-123", "pretraining"))) Directory.Delete(sub, recursive: true);
        var e = Assert.Throws<CheckpointMismatchException>(() =>
            FineTuneExperiment.Run(tiny.Data, tiny.Settings with { Model = ExperimentModel.Mlp }, [FineTuneArm.Frozen], checkpoints: checkpoints));
        Assert.EndsWith(ExperimentCheckpoints.PhaseFile, e.Path);
        Assert.Contains("model: checkpoint Cnn, run Mlp", e.Message);
    }
}
