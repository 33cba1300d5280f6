using DoraSharp.Experiments;
using Xunit;

namespace DoraSharp.Tests.Experiments;

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
    public void An_undefined_model_is_refused_by_name()
    {
        var settings = new ExperimentSettings { Model = (ExperimentModel)7 };
        var e = Assert.Throws<ArgumentException>(settings.Validate);
        Assert.Equal("Model", e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => settings.CreateModel());
    }
}
