using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// The settings of the worked example (pretrain → copy → fine-tune variants → evaluate). The defaults are the
/// original recipe's: MLP 784→32→64→10, seed 123, 1 epoch of pretraining and 2 of fine-tuning, and
/// <see cref="Training"/>: <see cref="TrainerOptions"/>' defaults (Adam, batch 64) with learning rate 0.005.
/// <see cref="Model"/> = <see cref="ExperimentModel.Cnn"/> runs the same recipe on <see cref="MnistCnn"/>.
/// </summary>
/// <remarks>
/// Seed s of the list <see cref="SeedValues"/> drives everything of its run: <c>torch.manual_seed(s)</c> before
/// the model is built; the pretraining data order from <c>SplitMix64.Derive(s, 0)</c>, the fine-tuning order
/// from <c>Derive(s, 1)</c>, and <c>torch.manual_seed(Derive(s, 2))</c> just before adapters are attached, so
/// that the LoRA and DoRA arms of one rank start from the same A and see the batches in the same order.
/// </remarks>
public sealed record ExperimentSettings
{
    /// <summary>Shift (default) or Continue; see <see cref="ExperimentTask"/>.</summary>
    public ExperimentTask Task { get; init; } = ExperimentTask.Shift;

    /// <summary>The first seed. At least 0.</summary>
    public long Seed { get; init; } = 123;

    /// <summary>How many seeds to run: <see cref="Seed"/>, <see cref="Seed"/> + 1, … At least 1.</summary>
    public int Seeds { get; init; } = 1;

    /// <summary>The model pretrained and fine-tuned: the MLP (default) or the CNN.</summary>
    public ExperimentModel Model { get; init; } = ExperimentModel.Mlp;

    /// <summary>Width of the MLP's first hidden layer (the CNN's sizes are fixed).</summary>
    public int Hidden1 { get; init; } = 32;

    /// <summary>Width of the MLP's second hidden layer.</summary>
    public int Hidden2 { get; init; } = 64;

    /// <summary>Epochs of pretraining.</summary>
    public int PretrainEpochs { get; init; } = 1;

    /// <summary>Epochs of fine-tuning, for every arm.</summary>
    public int FineTuneEpochs { get; init; } = 2;

    /// <summary>
    /// How both training phases train: batch size, learning rate, optimizer, weight decay, schedule, warm-up,
    /// gradient clipping and the NaN policy. The defaults are <see cref="TrainerOptions"/>'s (batch 64, Adam, no
    /// weight decay, constant rate, no clipping, stop on NaN) with the recipe's learning rate of 0.005. Its
    /// <see cref="TrainerOptions.Epochs"/> and <see cref="TrainerOptions.Seed"/> are not used: each phase takes its
    /// epochs from <see cref="PretrainEpochs"/> or <see cref="FineTuneEpochs"/> and its data-order seed from the
    /// run's seed (see <see cref="PretrainingOptions"/> and <see cref="FineTuningOptions"/>).
    /// </summary>
    public TrainerOptions Training { get; init; } = new() { LearningRate = 0.005 };

    /// <summary>
    /// The modules that get adapters. Unset (or set to null), the <see cref="Model"/>'s default:
    /// <see cref="DefaultTargetModules"/>.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.AllowNull]
    public IReadOnlyList<string> TargetModules
    {
        get => _targetModules ?? DefaultTargetModules(Model);
        init => _targetModules = value;
    }

    private readonly IReadOnlyList<string>? _targetModules;

    /// <summary>A model's default adapter targets: the MLP's three Linear layers; the CNN's two Conv2d layers and its classifier.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined model.</exception>
    public static IReadOnlyList<string> DefaultTargetModules(ExperimentModel model) => model switch
    {
        ExperimentModel.Mlp => MnistMlp.LinearLayers,
        ExperimentModel.Cnn => MnistCnn.AdapterTargets,
        _ => throw new ArgumentOutOfRangeException(nameof(model), model, "expected Mlp or Cnn"),
    };

    /// <summary>
    /// A new, untrained model of these settings (<see cref="Model"/>, and for the MLP <see cref="Hidden1"/> and
    /// <see cref="Hidden2"/>), initialised from torch's global generator: seed it with torch.manual_seed first.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Not a defined model.</exception>
    public MnistClassifier CreateModel() => Model switch
    {
        ExperimentModel.Mlp => new MnistMlp(hidden1: Hidden1, hidden2: Hidden2),
        ExperimentModel.Cnn => new MnistCnn(),
        _ => throw new ArgumentOutOfRangeException(nameof(Model), Model, "expected Mlp or Cnn"),
    };

    /// <summary>The model in one line, for display and results.json, e.g. "MLP 784→32→64→10, ReLU".</summary>
    public string ModelDescription => Model switch
    {
        ExperimentModel.Cnn => "CNN conv1 1→8, conv2 8→16 (3×3, ReLU, max-pool 2), fc 784→10",
        _ => $"MLP 784→{Hidden1}→{Hidden2}→10, ReLU",
    };

    /// <summary>The seeds run, in order: <see cref="Seed"/> + 0 … <see cref="Seeds"/> − 1.</summary>
    public IReadOnlyList<long> SeedValues => Enumerable.Range(0, Seeds).Select(i => Seed + i).ToArray();

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting.</summary>
    public void Validate()
    {
        if (Seed < 0) throw Invalid(nameof(Seed), Seed, "at least 0");
        if (Seeds < 1) throw Invalid(nameof(Seeds), Seeds, "at least 1");
        if (Seed > long.MaxValue - Seeds) throw Invalid(nameof(Seed), Seed, $"small enough that {Seeds} consecutive seeds fit in a 64-bit integer");
        if (!Enum.IsDefined(Model)) throw Invalid(nameof(Model), Model, "Mlp or Cnn");
        if (Hidden1 < 1) throw Invalid(nameof(Hidden1), Hidden1, "at least 1");
        if (Hidden2 < 1) throw Invalid(nameof(Hidden2), Hidden2, "at least 1");
        if (PretrainEpochs < 1) throw Invalid(nameof(PretrainEpochs), PretrainEpochs, "at least 1");
        if (FineTuneEpochs < 1) throw Invalid(nameof(FineTuneEpochs), FineTuneEpochs, "at least 1");
        if (TargetModules is null || TargetModules.Count == 0) throw Invalid(nameof(TargetModules), "[]", "at least one module name");
        if (Training is null) throw Invalid(nameof(Training), "null", "trainer options");
        PretrainingOptions(Seed).Validate();
    }

    /// <summary>The trainer options of pretraining for seed <paramref name="seed"/>.</summary>
    public TrainerOptions PretrainingOptions(long seed) => TrainerOptions(PretrainEpochs, SplitMix64.Derive((ulong)seed, 0));

    /// <summary>The trainer options of fine-tuning (every arm) for seed <paramref name="seed"/>.</summary>
    public TrainerOptions FineTuningOptions(long seed) => TrainerOptions(FineTuneEpochs, SplitMix64.Derive((ulong)seed, 1));

    /// <summary>The torch seed set just before adapters are attached in the run of seed <paramref name="seed"/>.</summary>
    public static long AdapterInitSeed(long seed) => (long)(SplitMix64.Derive((ulong)seed, 2) >> 1);

    private TrainerOptions TrainerOptions(int epochs, ulong orderSeed) => Training with { Epochs = epochs, Seed = orderSeed };

    private static ArgumentException Invalid(string setting, object value, string expected) =>
        new($"ExperimentSettings.{setting} = {Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)} is invalid: expected {expected}.", setting);
}
