using DoraSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Training;

[Collection(SeededRuns.Name)]
public sealed class TrainerTests
{
    private static nn.Module<Tensor, Tensor> SmallMlp(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3));
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module model) =>
        model.named_parameters().ToDictionary(p => p.name, p => p.parameter.detach().clone());

    private static TrainingResult Train(nn.Module<Tensor, Tensor> model, LabelledTensors data, TrainerOptions options, IProgress<TrainingProgress>? progress = null)
    {
        using var trainer = new Trainer(model, model.parameters(), options);
        return trainer.Fit(data, progress);
    }

    [Fact]
    public void An_empty_training_set_is_refused_naming_where_it_came_from()
    {
        using var data = new LabelledTensors(zeros(0, 4), zeros(0, dtype: ScalarType.Int64), "my empty examples");
        var model = SmallMlp(1);
        using var trainer = new Trainer(model, model.parameters(), new TrainerOptions());

        var e = Assert.Throws<ArgumentException>(() => trainer.Fit(data));

        Assert.Equal("train", e.ParamName);
        Assert.StartsWith("The training split (my empty examples) is empty.", e.Message);
    }

    [Fact]
    public void Two_runs_with_the_same_seeds_give_bit_identical_weights()
    {
        using var data = SyntheticData.Separable(300);
        var options = new TrainerOptions { Epochs = 2, BatchSize = 32, LearningRate = 0.01, Seed = 9 };
        var first = SmallMlp(1);
        var second = SmallMlp(1);
        var third = SmallMlp(1);
        var lossesA = Train(first, data, options).Losses;
        var lossesB = Train(second, data, options).Losses;
        Train(third, data, options with { Seed = 10 });

        Assert.Equal(lossesA, lossesB);
        var a = Snapshot(first);
        var b = Snapshot(second);
        foreach (var (name, tensor) in a) TensorAssert.Equal(tensor, b[name], name);
        // The data seed matters: another order gives other weights (so the comparison above can fail).
        var c = Snapshot(third);
        Assert.Contains(a, kv => !kv.Value.eq(c[kv.Key]).all().item<bool>());
    }

    [Fact]
    public void Each_epoch_visits_every_example_once_in_the_seeded_order()
    {
        using var data = SyntheticData.Indexed(100);
        torch.manual_seed(2);
        var model = new RecordingModel();
        Train(model, data, new TrainerOptions { Epochs = 3, BatchSize = 32, LearningRate = 0.01, Seed = 77 });

        Assert.Equal(12, model.Batches.Count);   // 4 batches per epoch: 32, 32, 32, 4
        for (var epoch = 0; epoch < 3; epoch++)
        {
            var batches = model.Batches.Skip(4 * epoch).Take(4).ToList();
            Assert.Equal(new[] { 32, 32, 32, 4 }, batches.Select(b => b.Length));
            var seen = batches.SelectMany(b => b).ToArray();
            Assert.Equal(Enumerable.Range(0, 100), seen.Order());             // a permutation: each example exactly once
            Assert.Equal(BatchOrder.Permutation(100, 77, epoch), seen);         // in the order the seed defines
        }
        Assert.NotEqual(model.Batches[0], model.Batches[4]);                   // reshuffled each epoch
    }

    [Fact]
    public void Progress_reports_every_step_with_its_learning_rate()
    {
        using var data = SyntheticData.Separable(8);
        var reports = new List<TrainingProgress>();
        var result = Train(SmallMlp(3), data, new TrainerOptions { Epochs = 2, BatchSize = 4, LearningRate = 0.1, Schedule = LearningRateSchedule.Linear, Seed = 1 },
            new Collect(reports));

        Assert.Equal(new long[] { 1, 2, 3, 4 }, reports.Select(r => r.Step));
        Assert.All(reports, r => Assert.Equal(4, r.TotalSteps));
        Assert.Equal(new[] { 0, 0, 1, 1 }, reports.Select(r => r.Epoch));
        Assert.Equal(new[] { 0.1, 0.075, 0.05, 0.025 }, reports.Select(r => Math.Round(r.LearningRate, 12)));
        Assert.Equal(reports.Select(r => r.Loss), result.Losses);
        Assert.Equal(16, result.ExamplesSeen);
        Assert.Equal(new TrainingState { DataOrderSeed = 1, Epoch = 2, BatchInEpoch = 0, Step = 4, LearningRate = 0.025 }, result.State with { LearningRate = Math.Round(result.State.LearningRate, 12) });
    }

    [Fact]
    public void Training_lowers_the_loss()
    {
        using var data = SyntheticData.Separable(512);
        var model = SmallMlp(4);
        var before = Evaluator.Evaluate(model, data).Accuracy;
        Train(model, data, new TrainerOptions { Epochs = 5, BatchSize = 32, LearningRate = 0.01, Seed = 2 });
        var after = Evaluator.Evaluate(model, data).Accuracy;
        Assert.True(after > 0.9 && after > before + 0.2, $"accuracy {before:P1} → {after:P1}");
    }

    [Fact]
    public void No_tensor_is_left_alive_per_step()
    {
        using var data = SyntheticData.Separable(64 * 40);
        var live = new Dictionary<long, long>();
        Train(SmallMlp(5), data, new TrainerOptions { Epochs = 1, BatchSize = 64, Seed = 3 },
            new Collect(null, p => live[p.Step] = DisposeScopeManager.Statistics.ThreadTotalLiveCount));
        // After the first steps (optimizer state appears at step 1) the number of live tensors must not move.
        Assert.Equal(live[5], live[40]);
    }

    [Fact]
    public void Gradient_clipping_limits_the_update()
    {
        using var data = SyntheticData.Separable(64);
        var options = new TrainerOptions { Epochs = 1, BatchSize = 64, LearningRate = 0.1, Seed = 1 };
        var free = SmallMlp(6);
        var clipped = SmallMlp(6);
        var start = Snapshot(free);
        Train(free, data, options);
        Train(clipped, data, options with { MaxGradNorm = 1e-12 });
        // One Adam step moves each weight by about lr; with the gradient clipped to 1e-12, eps (1e-8) dominates
        // Adam's denominator and the step shrinks by about 1e-4.
        double MaxChange(nn.Module m) => m.named_parameters().Max(p => (p.parameter - start[p.name]).abs().max().item<float>());
        Assert.True(MaxChange(free) > 0.05, $"unclipped change {MaxChange(free)}");
        Assert.True(MaxChange(clipped) < 1e-3, $"clipped change {MaxChange(clipped)}");
    }

    [Fact]
    public void A_nan_loss_stops_training_naming_the_step_and_keeps_the_weights_before_it()
    {
        using var data = SyntheticData.Separable(4);
        var order = BatchOrder.Permutation(4, 8, 0);
        data.Inputs[order[2], 1] = float.NaN;                 // the third batch of epoch 1 (batch size 1)
        var model = SmallMlp(7);
        var states = new List<Dictionary<string, Tensor>>();
        using var trainer = new Trainer(model, model.parameters(), new TrainerOptions { Epochs = 2, BatchSize = 1, Seed = 8 });

        var e = Assert.Throws<TrainingDivergedException>(() => trainer.Fit(data, new Collect(null, _ => states.Add(Snapshot(model)))));

        Assert.Contains("loss was NaN at step 3 (epoch 1, batch 3", e.Message);
        Assert.Equal(2, e.State.Step);
        Assert.Equal(2, trainer.State.Step);
        foreach (var (name, tensor) in states[1]) TensorAssert.Equal(tensor, Snapshot(model)[name], name);
    }

    [Fact]
    public void Skipping_non_finite_steps_goes_on_and_counts_them()
    {
        using var data = SyntheticData.Separable(4);
        data.Inputs[1, 1] = float.PositiveInfinity;
        var model = SmallMlp(7);
        var result = Train(model, data, new TrainerOptions { Epochs = 3, BatchSize = 1, Seed = 8, OnNonFiniteLoss = NonFiniteLossPolicy.SkipStep });

        Assert.Equal(12, result.State.Step);
        Assert.Equal(3, result.State.SkippedSteps);
        Assert.Equal(3, result.Losses.Count(l => !float.IsFinite(l)));
        Assert.All(model.parameters(), p => Assert.True(p.isfinite().all().item<bool>()));
    }

    [Fact]
    public void Cancelling_stops_before_the_next_step()
    {
        using var data = SyntheticData.Separable(40);
        using var cancel = new CancellationTokenSource();
        var model = SmallMlp(8);
        using var trainer = new Trainer(model, model.parameters(), new TrainerOptions { Epochs = 1, BatchSize = 4, Seed = 1 });
        Assert.ThrowsAny<OperationCanceledException>(() =>
            trainer.Fit(data, new Collect(null, p => { if (p.Step == 3) cancel.Cancel(); }), cancel.Token));
        Assert.Equal(3, trainer.State.Step);
        Assert.Equal(3, trainer.State.BatchInEpoch);
        Assert.True(model.training);
    }

    [Theory]
    [InlineData("Epochs")]
    [InlineData("BatchSize")]
    [InlineData("LearningRate")]
    [InlineData("WeightDecay")]
    [InlineData("WarmupSteps")]
    [InlineData("MaxGradNorm")]
    public void Invalid_options_are_named(string option)
    {
        var options = option switch
        {
            "Epochs" => new TrainerOptions { Epochs = 0 },
            "BatchSize" => new TrainerOptions { BatchSize = 0 },
            "LearningRate" => new TrainerOptions { LearningRate = double.NaN },
            "WeightDecay" => new TrainerOptions { WeightDecay = -1 },
            "WarmupSteps" => new TrainerOptions { WarmupSteps = -1 },
            _ => new TrainerOptions { MaxGradNorm = 0 },
        };
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.StartsWith($"TrainerOptions.{option} = ", e.Message);
    }

    [Fact]
    public void Frozen_or_missing_parameters_are_refused()
    {
        var model = SmallMlp(9);
        Assert.Contains("no parameters", Assert.Throws<ArgumentException>(() => new Trainer(model, [], new TrainerOptions())).Message);
        foreach (var p in model.parameters()) p.requires_grad = false;
        Assert.Contains("frozen", Assert.Throws<ArgumentException>(() => new Trainer(model, model.parameters(), new TrainerOptions())).Message);
    }

    [Fact]
    public void AdamW_and_a_schedule_train_too()
    {
        using var data = SyntheticData.Separable(256);
        var model = SmallMlp(10);
        Train(model, data, new TrainerOptions { Epochs = 4, BatchSize = 32, LearningRate = 0.02, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.01,
            Schedule = LearningRateSchedule.Cosine, WarmupSteps = 5, Seed = 4 });
        Assert.True(Evaluator.Evaluate(model, data).Accuracy > 0.85);
    }

    private sealed class Collect(List<TrainingProgress>? into, Action<TrainingProgress>? action = null) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            into?.Add(value);
            action?.Invoke(value);
        }
    }
}
