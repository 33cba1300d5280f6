using System.CommandLine;
using System.CommandLine.Parsing;
using DoraSharp.Examples.Experiments;
using DoraSharp.Training;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// The options `dora demo`, `dora compare` and `dora analyze` share: data, task, seeds, model and training settings, output
/// folder. Every value is checked while parsing, so a bad one ends in one line on stderr and exit code 2
/// before any work starts.
/// </summary>
internal sealed class ExperimentOptions
{
    private static readonly ExperimentSettings Defaults = new();

    public Option<string> Task { get; } = Choice("--task", "shift",
        "shift: pretrain on the images as they are, fine-tune and test on them turned 90° (the base model falls to about chance); " +
        "continue: the original recipe, fine-tune and test on the same distribution.", "shift", "continue");
    public Option<string> Dataset { get; } = Choice("--dataset", "mnist",
        "Data set: mnist (bundled 8,000/2,000 digits, or the full set with --data-dir) or fashion-mnist (Debian's dataset-fashion-mnist or --data-dir).",
        DoraSharp.Examples.Data.DatasetCatalog.Names.ToArray());
    public Option<string?> DataDir { get; } = new("--data-dir")
    {
        Description = "Folder with train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (raw or .gz). Default: the bundled or installed copy.",
        HelpName = "DIR",
    };
    public Option<string> Out { get; }
    public Option<long> Seed { get; } = OptionRules.Whole("--seed", Defaults.Seed, 0L, OptionRules.MaxSeed, "First random seed (model init, data order, adapter init).");
    public Option<int> Seeds { get; } = OptionRules.Whole("--seeds", Defaults.Seeds, 1, 100, "Number of seeds (seed, seed+1, …); results are mean ± sample std over seeds.");
    public Option<string> Model { get; } = Choice("--model", "mlp",
        "mlp: the original recipe's MLP 784→32→64→10 (adapters on its three Linear layers); " +
        "cnn: a small CNN, conv 1→8 and 8→16 (3×3, ReLU, max-pool 2), then Linear 784→10 (adapters on conv1, conv2 and fc).", "mlp", "cnn");
    public Option<int> Hidden1 { get; } = OptionRules.Whole("--hidden1", Defaults.Hidden1, 1, 4096, "Width of the MLP's first hidden layer (--model mlp only).");
    public Option<int> Hidden2 { get; } = OptionRules.Whole("--hidden2", Defaults.Hidden2, 1, 4096, "Width of the MLP's second hidden layer (--model mlp only).");
    public Option<int> PretrainEpochs { get; } = OptionRules.Whole("--pretrain-epochs", Defaults.PretrainEpochs, 1, 1000, "Epochs of pretraining.");
    public Option<int> Epochs { get; } = OptionRules.Whole("--epochs", Defaults.FineTuneEpochs, 1, 1000, "Epochs of fine-tuning, for every method.");
    public Option<int> BatchSize { get; } = OptionRules.Whole("--batch-size", Defaults.Training.BatchSize, 1, 65536, "Batch size.");
    public Option<double> LearningRate { get; } = OptionRules.Real("--lr", Defaults.Training.LearningRate, 0, aboveMin: true, 10, "Learning rate (pretraining and fine-tuning).");
    public Option<string> Optimizer { get; } = Choice("--optimizer", Defaults.Training.Optimizer.ToString().ToLowerInvariant(), "Optimizer.", "adam", "adamw");
    public Option<double> WeightDecay { get; } = OptionRules.Real("--weight-decay", Defaults.Training.WeightDecay, 0, aboveMin: false, 10, "Weight decay (L2 for adam, decoupled for adamw).");
    public Option<string> Schedule { get; } = Choice("--lr-schedule", Defaults.Training.Schedule.ToString().ToLowerInvariant(), "Learning-rate schedule of each training phase.", "constant", "linear", "cosine");
    public Option<int> WarmupSteps { get; } = OptionRules.Whole("--warmup-steps", Defaults.Training.WarmupSteps, 0, 1_000_000, "Linear warm-up steps at the start of each training phase.");
    public Option<double?> MaxGradNorm { get; } = OptionRules.OptionalReal("--max-grad-norm", 0, aboveMin: true, 1e6,
        "Clip gradients to this total L2 norm. Default: no clipping.", "NORM");
    public Option<string> OnNan { get; } = Choice("--on-nan", Defaults.Training.OnNonFiniteLoss == NonFiniteLossPolicy.SkipStep ? "skip" : "stop", "On a NaN or infinite loss: stop with a message naming the step, or skip that step.", "stop", "skip");
    public Option<int> Threads { get; } = OptionRules.Whole("--threads", 1, 1, 256,
        "CPU threads for tensor operations. This model's operations are too small to gain from more, and on a busy machine extra threads mostly wait for each other.");
    public Option<string[]> Targets { get; } = new("--targets")
    {
        // No DefaultValueFactory: help would print an array default as "a|b|c", which reads like another syntax.
        Description = "Modules that get adapters, comma-separated. Default: layers.0,layers.2,layers.4 for the MLP (all three Linear layers), conv1,conv2,fc for the CNN.",
        HelpName = "NAMES",
        CustomParser = r => r.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.TrimEntries)).ToArray(),
        Validators = { r => { if (r.GetValueOrDefault<string[]>() is { } v && (v.Length == 0 || v.Any(string.IsNullOrEmpty))) r.AddError($"--targets needs module names separated by commas, e.g. layers.0,layers.4 (got '{string.Join(',', r.Tokens.Select(t => t.Value))}')."); } },
    };

    public ExperimentOptions(string defaultOut)
    {
        Out = new Option<string>("--out")
        {
            Description = "Folder for results.json, losses.csv and the plots (created if missing).",
            HelpName = "DIR",
            DefaultValueFactory = _ => defaultOut,
        };
    }

    public void AddTo(Command command)
    {
        foreach (var option in new Option[] { Task, Dataset, DataDir, Out, Model, Seed, Seeds, Hidden1, Hidden2, PretrainEpochs, Epochs, BatchSize,
                     LearningRate, Optimizer, WeightDecay, Schedule, WarmupSteps, MaxGradNorm, OnNan, Targets, Threads })
            command.Options.Add(option);
        // The CNN's sizes are fixed: an MLP width given with --model cnn would be silently ignored.
        command.Validators.Add(r =>
        {
            // The token, not GetValue: an invalid --model value throws there; its own error is reported instead.
            if (r.GetResult(Model)?.Tokens is not [.., { Value: "cnn" }]) return;
            foreach (var width in new[] { Hidden1, Hidden2 })
                if (r.GetResult(width) is { Implicit: false })
                    r.AddError($"{width.Name} sets a width of the MLP; it does not apply to --model cnn.");
        });
    }

    public ExperimentSettings Settings(ParseResult p) => new()
    {
        Task = p.GetValue(Task) == "continue" ? ExperimentTask.Continue : ExperimentTask.Shift,
        Model = p.GetValue(Model) == "cnn" ? ExperimentModel.Cnn : ExperimentModel.Mlp,
        Seed = p.GetValue(Seed),
        Seeds = p.GetValue(Seeds),
        Hidden1 = p.GetValue(Hidden1),
        Hidden2 = p.GetValue(Hidden2),
        PretrainEpochs = p.GetValue(PretrainEpochs),
        FineTuneEpochs = p.GetValue(Epochs),
        Training = Defaults.Training with
        {
            BatchSize = p.GetValue(BatchSize),
            LearningRate = p.GetValue(LearningRate),
            Optimizer = p.GetValue(Optimizer) == "adamw" ? OptimizerKind.AdamW : OptimizerKind.Adam,
            WeightDecay = p.GetValue(WeightDecay),
            Schedule = p.GetValue(Schedule) switch { "linear" => LearningRateSchedule.Linear, "cosine" => LearningRateSchedule.Cosine, _ => LearningRateSchedule.Constant },
            WarmupSteps = p.GetValue(WarmupSteps),
            MaxGradNorm = p.GetValue(MaxGradNorm),
            OnNonFiniteLoss = p.GetValue(OnNan) == "skip" ? NonFiniteLossPolicy.SkipStep : NonFiniteLossPolicy.Stop,
        },
        TargetModules = p.GetValue(Targets) is { Length: > 0 } targets ? targets : null,   // null: the model's default targets
    };

    private static Option<string> Choice(string name, string defaultValue, string description, params string[] values) =>
        OptionRules.Choice(name, defaultValue, description, values);
}
