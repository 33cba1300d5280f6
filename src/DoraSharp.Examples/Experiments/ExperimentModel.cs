namespace DoraSharp.Examples.Experiments;

/// <summary>The model of the worked example (see <see cref="ExperimentSettings.Model"/>).</summary>
public enum ExperimentModel
{
    /// <summary>The original recipe's <see cref="MnistMlp"/>, adapters on its three Linear layers.</summary>
    Mlp,

    /// <summary>The small <see cref="MnistCnn"/>, adapters on its two Conv2d layers and its Linear classifier.</summary>
    Cnn,
}
