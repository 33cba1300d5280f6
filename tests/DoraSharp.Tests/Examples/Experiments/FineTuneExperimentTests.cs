using System.Text.Json.Nodes;
using DoraSharp.Examples.Experiments;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

[Collection(SeededRuns.Name)]
public sealed class FineTuneExperimentTests(TinyExperiment tiny) : IClassFixture<TinyExperiment>
{
    [Fact]
    public void Every_evaluation_scores_the_whole_test_split()
    {
        Assert.Equal(TinyExperiment.TestImages, tiny.Result.Pretraining.EvaluatedImages);
        Assert.All(tiny.Result.Arms, a => Assert.Equal(TinyExperiment.TestImages, a.EvaluatedImages));
        Assert.All(tiny.Result.Arms.SelectMany(a => a.Runs), r => Assert.Equal(TinyExperiment.TestImages, r.Test.Count));
        Assert.Equal(TinyExperiment.TestImages, tiny.Result.Data.TestImages);
    }

    [Fact]
    public void Parameter_counts_are_those_of_the_recipe()
    {
        // Full: 27,882. LoRA r=4: A and B of each layer, 4·(784+32) + 4·(32+64) + 4·(64+10) = 3,944.
        // DoRA adds one magnitude per output: 32 + 64 + 10 = 106. Totals include the adapters (PEFT's "all params").
        var expected = new (long Trainable, long Total)[] { (0, 27_882), (27_882, 27_882), (3_944, 31_826), (4_050, 31_932) };
        Assert.Equal(expected, tiny.Result.Arms.Select(a => (a.TrainableParameters, a.TotalParameters)));
        Assert.Equal(27_882, tiny.Result.Pretraining.Parameters);
    }

    [Fact]
    public void Each_arm_runs_once_per_seed_and_the_frozen_base_is_not_trained()
    {
        Assert.All(tiny.Result.Arms, a => Assert.Equal(new long[] { 123, 124 }, a.Runs.Select(r => r.Seed)));
        var frozen = tiny.Result[FineTuneArm.Frozen];
        Assert.All(frozen.Runs, r => { Assert.Empty(r.Losses); Assert.Equal(TimeSpan.Zero, r.TrainTime); });
        // 640 images in batches of 64: 10 steps per epoch, 1 epoch.
        Assert.All(tiny.Result.Arms.Where(a => a.Arm != FineTuneArm.Frozen).SelectMany(a => a.Runs), r => Assert.Equal(10, r.Losses.Count));
        Assert.All(tiny.Result.Pretraining.Runs, r => Assert.Equal(10, r.Losses.Count));
    }

    [Fact]
    public void Progress_names_each_trained_phase_in_order()
    {
        var phases = tiny.Phases.Select(p => $"{p.Phase}/{p.Seed}").Distinct().ToArray();
        Assert.Equal(new[]
        {
            "Pretraining/123", "Full fine-tuning/123", "LoRA r=4/123", "DoRA r=4/123",
            "Pretraining/124", "Full fine-tuning/124", "LoRA r=4/124", "DoRA r=4/124",
        }, phases);
        Assert.Equal(2 * 4 * 10, tiny.Phases.Count);
    }

    [Fact]
    public void The_callback_sees_every_model_and_the_adapters_of_adapter_arms()
    {
        Assert.Equal(8, tiny.Trained.Count);
        Assert.All(tiny.Trained, t => Assert.Equal(t.Arm.IsAdapter, t.HasAdapters));
        Assert.All(tiny.Trained.Where(t => t.HasAdapters), t => Assert.Equal(3, t.AdaptedLayers));
    }

    [Fact]
    public void The_same_settings_give_the_same_numbers()
    {
        var again = FineTuneExperiment.Run(tiny.Data, tiny.Settings, tiny.Arms);
        Assert.Equal(tiny.Result.Pretraining.Runs.Select(r => r.Test.Correct), again.Pretraining.Runs.Select(r => r.Test.Correct));
        foreach (var (a, b) in tiny.Result.Arms.Zip(again.Arms))
        {
            Assert.Equal(a.Runs.Select(r => r.Test.Correct), b.Runs.Select(r => r.Test.Correct));
            Assert.Equal(a.Runs.SelectMany(r => r.Losses), b.Runs.SelectMany(r => r.Losses));
        }
    }

    [Fact]
    public void In_the_continue_task_the_frozen_base_scores_what_pretraining_scored()
    {
        using var data = TinyExperiment.Load(ExperimentTask.Continue);
        var result = FineTuneExperiment.Run(data, tiny.Settings with { Seeds = 1 }, [FineTuneArm.Frozen]);
        Assert.Equal(result.Pretraining.Runs[0].Test, result[FineTuneArm.Frozen].Runs[0].Test);
        Assert.Same(data.PretrainTest, data.FineTuneTest);
    }

    [Fact]
    public void The_shift_task_fine_tunes_on_the_turned_images()
    {
        Assert.Equal(tiny.Data.PretrainTrain.Count, tiny.Data.FineTuneTrain.Count);
        // Image 0's pixel (row 27 − c, column r) of the turned copy is pixel (r, c) of the original.
        var original = tiny.Data.PretrainTrain.Images[0].view(28, 28);
        var turned = tiny.Data.FineTuneTrain.Images[0].view(28, 28);
        Assert.True(turned.eq(original.transpose(0, 1).flip(0)).all().item<bool>());
        Assert.True(tiny.Data.FineTuneTest.Labels.eq(tiny.Data.PretrainTest.Labels).all().item<bool>());
    }

    [Fact]
    public void Results_json_holds_every_number_of_the_table()
    {
        using var dir = new TempDirectory();
        var path = dir.File("results.json");
        ResultsFile.Write(path, tiny.Result, "demo");
        var json = JsonNode.Parse(File.ReadAllText(path))!;

        Assert.Equal("demo", (string)json["command"]!);
        Assert.Equal(new long[] { 123, 124 }, json["settings"]!["seeds"]!.AsArray().Select(v => (long)v!));
        Assert.Equal(TinyExperiment.TestImages, (int)json["data"]!["test_images"]!);
        var methods = json["methods"]!.AsArray();
        Assert.Equal(new[] { "frozen", "full", "lora", "dora" }, methods.Select(m => (string)m!["method"]!));
        foreach (var (m, arm) in methods.Zip(tiny.Result.Arms))
        {
            Assert.Equal(TinyExperiment.TestImages, (int)m!["evaluated_images"]!);
            Assert.Equal(arm.TrainableParameters, (long)m["trainable_parameters"]!);
            var correct = m["correct_per_seed"]!.AsArray().Select(v => (long)v!).ToArray();
            var perSeed = m["accuracy"]!["per_seed"]!.AsArray().Select(v => (double)v!).ToArray();
            Assert.Equal(correct.Select(c => (double)c / TinyExperiment.TestImages), perSeed);
            Assert.Equal(perSeed.Average(), (double)m["accuracy"]!["mean"]!, 12);
            Assert.NotNull(m["accuracy"]!["std"]);
            Assert.Equal(2, m["train_seconds"]!["per_seed"]!.AsArray().Count);
        }
        Assert.Equal(TinyExperiment.TestImages, (int)json["pretraining"]!["evaluated_images"]!);
    }

    [Fact]
    public void Losses_csv_has_one_row_per_step()
    {
        using var dir = new TempDirectory();
        var path = dir.File("losses.csv");
        ResultsFile.WriteLosses(path, tiny.Result);
        var lines = File.ReadAllLines(path);
        Assert.Equal("phase,seed,step,loss", lines[0]);
        // 2 seeds × (pretraining + full + LoRA + DoRA) × 10 steps.
        Assert.Equal(1 + 2 * 4 * 10, lines.Length);
        Assert.StartsWith("pretraining,123,1,", lines[1]);
        Assert.Contains(lines, l => l.StartsWith("dora-r4,124,10,", StringComparison.Ordinal));
    }

    [Fact]
    public void Invalid_settings_and_arms_are_refused_before_any_work()
    {
        Assert.Contains("Seeds", Assert.Throws<ArgumentException>(() => FineTuneExperiment.Run(tiny.Data, tiny.Settings with { Seeds = 0 }, tiny.Arms)).Message);
        Assert.Contains("only once", Assert.Throws<ArgumentException>(() => FineTuneExperiment.Run(tiny.Data, tiny.Settings, [FineTuneArm.Full, FineTuneArm.Full])).Message);
        Assert.Throws<LoraConfigException>(() => FineTuneExperiment.Run(tiny.Data, tiny.Settings, [FineTuneArm.Lora(0, 8)]));
    }
}
