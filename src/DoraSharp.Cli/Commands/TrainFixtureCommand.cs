using System.CommandLine;
using System.Globalization;
using DoraSharp.Examples.Data;
using DoraSharp.Examples.Experiments;
using DoraSharp.Training;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora train-fixture` (hidden): trains LoRA or DoRA adapters on a small MLP over the first examples of the
/// bundled MNIST with checkpoints, resuming from the newest one, and saves the adapter. The fault-injection
/// tests kill it at random moments and compare its final adapter with an uninterrupted run's.
/// </summary>
internal static class TrainFixtureCommand
{
    public static Command Create()
    {
        var dir = new Option<string>("--checkpoint-dir") { Required = true, Description = "Checkpoint directory (resumed from when it holds one)." };
        var outDir = new Option<string>("--out") { Required = true, Description = "Where the final adapter is saved." };
        var every = OptionRules.Whole("--checkpoint-every", 20, 0, 1_000_000, "Checkpoint every N steps (0: at epoch ends only).");
        var keep = OptionRules.Whole("--keep", 2, 1, 100, "Checkpoints kept.");
        var examples = OptionRules.Whole("--examples", 512, 1, 8000, "Training examples (the first N of the bundled MNIST train split).");
        var epochs = OptionRules.Whole("--epochs", 3, 1, 1000, "Epochs.");
        var batch = OptionRules.Whole("--batch-size", 16, 1, 65536, "Batch size.");
        var seed = OptionRules.Whole("--seed", 7L, 0L, OptionRules.MaxSeed, "Seed of the model, adapter init and data order.");
        var rank = OptionRules.Whole("--r", 4, 1, DemoCommand.MaxRank, "Adapter rank.");
        var dora = new Option<bool>("--dora") { Description = "DoRA instead of LoRA." };
        var command = new Command("train-fixture", "Checkpointed adapter training on an MNIST slice, for fault-injection tests.")
            { dir, outDir, every, keep, examples, epochs, batch, seed, rank, dora };
        command.Hidden = true;
        command.SetAction(p => Run(p.GetValue(dir)!, p.GetValue(outDir)!, p.GetValue(every), p.GetValue(keep), p.GetValue(examples),
            p.GetValue(epochs), p.GetValue(batch), p.GetValue(seed), p.GetValue(rank), p.GetValue(dora)));
        return command;
    }

    private static int Run(string checkpointDir, string outDir, int every, int keep, int examples, int epochs, int batchSize, long seed, int r, bool dora)
    {
        TorchSharp.torch.set_num_threads(1);   // bit-identical runs need the same reduction order
        using var all = DatasetCatalog.Load("mnist", null, train: true);
        using var train = ImageTransforms.Take(all, examples);
        TorchSharp.torch.manual_seed(seed);
        using var model = new MnistMlp(hidden1: 32, hidden2: 32);
        var config = new LoraConfig { R = r, LoraAlpha = 2 * r, UseDora = dora, TargetModules = MnistMlp.LinearLayers };
        var lora = LoraModel.Wrap(model, config);
        var c = CultureInfo.InvariantCulture;
        var store = new CheckpointStore(new CheckpointOptions
        {
            Directory = checkpointDir,
            EverySteps = every,
            Keep = keep,
            PauseBetweenFiles = CheckpointFaultDelay.FromEnvironment(),
            Fingerprint = new Dictionary<string, string>
            {
                ["model"] = "MnistMlp 784-32-32-10",
                ["examples"] = examples.ToString(c),
                ["r"] = r.ToString(c),
                ["lora_alpha"] = (2 * r).ToString(c),
                ["use_dora"] = dora ? "true" : "false",
            },
        }, new Relay<string>(Console.Error.WriteLine));
        using var trainer = new Trainer(model, lora.TrainableParameters(),
            new TrainerOptions { Epochs = epochs, BatchSize = batchSize, LearningRate = 0.01, Seed = (ulong)seed });
        // The fault tests time their kills from this line.
        Console.WriteLine($"training from step {(trainer.Resume(store) ? trainer.State.Step : 0)}");
        Console.Out.Flush();

        using var stop = new StopSignals();
        try
        {
            var result = trainer.Fit(train, null, stop.Token, store);
            lora.SaveAdapter(outDir);
            Console.WriteLine($"finished at step {result.State.Step}");
            return 0;
        }
        catch (OperationCanceledException) when (stop.Stopped)
        {
            Console.Error.WriteLine($"dora: stopped ({stop.Name}) after step {trainer.State.Step}; every finished step is checkpointed in {checkpointDir}: run the same command again to resume.");
            return stop.ExitCode;
        }
    }
}
