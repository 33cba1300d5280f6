using DoraSharp.Examples.Experiments;
using DoraSharp.Training;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

public sealed class ExperimentSettingsTests
{
    [Fact]
    public void The_default_model_is_the_recipes_mlp_with_its_three_linear_layers_as_targets()
    {
        var settings = new ExperimentSettings();
        Assert.Equal(ExperimentModel.Mlp, settings.Model);
        Assert.Equal(new[] { "layers.0", "layers.2", "layers.4" }, settings.TargetModules);
        using var model = settings.CreateModel();
        var mlp = Assert.IsType<MnistMlp>(model);
        Assert.Equal((32, 64), (mlp.Hidden1, mlp.Hidden2));
        Assert.Equal("MLP 784→32→64→10, ReLU", settings.ModelDescription);
    }

    [Fact]
    public void The_cnn_brings_its_own_default_targets_unless_targets_are_given()
    {
        var cnn = new ExperimentSettings { Model = ExperimentModel.Cnn };
        Assert.Equal(new[] { "conv1", "conv2", "fc" }, cnn.TargetModules);
        using (var model = cnn.CreateModel()) Assert.IsType<MnistCnn>(model);
        Assert.StartsWith("CNN", cnn.ModelDescription);

        Assert.Equal(new[] { "conv2" }, (cnn with { TargetModules = ["conv2"] }).TargetModules);
        // Null means "the model's default", also after switching the model.
        Assert.Equal(MnistMlp.LinearLayers, (cnn with { Model = ExperimentModel.Mlp }).TargetModules);
        Assert.Equal(MnistCnn.AdapterTargets, (cnn with { TargetModules = null }).TargetModules);
    }

    [Fact]
    public void The_mlp_widths_shape_only_the_mlp()
    {
        using var mlp = new ExperimentSettings { Hidden1 = 5, Hidden2 = 7 }.CreateModel();
        Assert.Equal(784 * 5 + 5 + 5 * 7 + 7 + 7 * 10 + 10, mlp.parameters().Sum(p => p.numel()));
        using var cnn = new ExperimentSettings { Model = ExperimentModel.Cnn, Hidden1 = 5, Hidden2 = 7 }.CreateModel();
        Assert.Equal(9_098, cnn.parameters().Sum(p => p.numel()));
    }

    [Fact]
    public void The_training_defaults_are_the_recipes_and_only_the_learning_rate_differs_from_the_trainers()
    {
        var training = new ExperimentSettings().Training;
        Assert.Equal(0.005, training.LearningRate);
        Assert.Equal(64, training.BatchSize);
        Assert.Equal(OptimizerKind.Adam, training.Optimizer);
        // Everything else is TrainerOptions' own default, written there once.
        Assert.Equal(new TrainerOptions() with { LearningRate = 0.005 }, training);
        Assert.Equal((1, 2), (new ExperimentSettings().PretrainEpochs, new ExperimentSettings().FineTuneEpochs));
    }

    [Fact]
    public void Each_phase_trains_with_the_shared_options_its_own_epochs_and_a_data_order_seed_derived_from_the_run_seed()
    {
        var settings = new ExperimentSettings
        {
            PretrainEpochs = 3,
            FineTuneEpochs = 5,
            // Epochs and Seed of the shared options are replaced per phase.
            Training = new TrainerOptions { Epochs = 9, Seed = 77, BatchSize = 16, LearningRate = 0.02, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.1, MaxGradNorm = 1.5 },
        };

        Assert.Equal(settings.Training with { Epochs = 3, Seed = SplitMix64.Derive(40, 0) }, settings.PretrainingOptions(40));
        Assert.Equal(settings.Training with { Epochs = 5, Seed = SplitMix64.Derive(40, 1) }, settings.FineTuningOptions(40));
        Assert.NotEqual(settings.PretrainingOptions(40).Seed, settings.PretrainingOptions(41).Seed);
    }

    [Fact]
    public void Invalid_training_options_are_refused_with_the_trainer_options_name()
    {
        var settings = new ExperimentSettings { Training = new TrainerOptions { BatchSize = 0 } };
        var e = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Equal("BatchSize", e.ParamName);
        Assert.StartsWith("TrainerOptions.BatchSize = 0 is invalid: expected at least 1.", e.Message);

        var missing = Assert.Throws<ArgumentException>(new ExperimentSettings { Training = null! }.Validate);
        Assert.Equal("Training", missing.ParamName);
    }

    [Fact]
    public void An_undefined_model_is_refused_by_name()
    {
        var settings = new ExperimentSettings { Model = (ExperimentModel)7 };
        var e = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Equal("Model", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => settings.CreateModel());
    }
}
