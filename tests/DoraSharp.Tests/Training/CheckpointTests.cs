using DoraSharp.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Training;

/// <summary>Checkpoints in-process: exact resume (Adam moments included), damaged and foreign checkpoints, divergence, write failures.</summary>
[Collection(SeededRuns.Name)]
public sealed class CheckpointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "dora-ckpt-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static nn.Module<Tensor, Tensor> SmallMlp(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3));
    }

    private static readonly TrainerOptions Options = new() { Epochs = 3, BatchSize = 8, LearningRate = 0.01, Seed = 11, Optimizer = OptimizerKind.AdamW, WeightDecay = 0.01 };

    private CheckpointStore Store(int every = 5, int keep = 2, List<string>? warnings = null, Dictionary<string, string>? fingerprint = null) =>
        new(new CheckpointOptions { Directory = _dir, EverySteps = every, Keep = keep, Fingerprint = fingerprint ?? new() { ["r"] = "4" } },
            warnings is null ? null : new Collect<string>(warnings.Add));

    private static float[][] Weights(nn.Module m) => m.parameters().Select(p => p.detach().flatten().data<float>().ToArray()).ToArray();

    [Fact]
    public void A_run_stopped_at_any_step_and_resumed_in_a_new_trainer_ends_bit_identical()
    {
        using var data = SyntheticData.Separable(100);
        var reference = SmallMlp(3);
        using (var t = new Trainer(reference, reference.parameters(), Options)) t.Fit(data);

        foreach (var stopAt in new[] { 1, 7, 13, 26 })
        {
            if (Directory.Exists(_dir)) Directory.Delete(_dir, true);
            var first = SmallMlp(3);
            using var cancel = new CancellationTokenSource();
            using (var t = new Trainer(first, first.parameters(), Options))
                Assert.Throws<OperationCanceledException>(() => t.Fit(data, new Collect<TrainingProgress>(p => { if (p.Step == stopAt) cancel.Cancel(); }), cancel.Token, Store()));

            var resumed = SmallMlp(99);   // different initial weights: everything must come from the checkpoint
            using var t2 = new Trainer(resumed, resumed.parameters(), Options);
            Assert.True(t2.Resume(Store()));
            Assert.Equal(stopAt, t2.State.Step);
            t2.Fit(data, null, default, Store());
            Assert.Equal(Weights(reference), Weights(resumed));
        }
    }

    [Fact]
    public void Keeps_the_last_k_complete_checkpoints_and_each_verifies()
    {
        using var data = SyntheticData.Separable(100);   // 13 steps per epoch, 39 in all
        var model = SmallMlp(3);
        using var t = new Trainer(model, model.parameters(), Options);
        var store = Store(every: 5, keep: 3);
        t.Fit(data, null, default, store);
        // Saved at 5, 10, 13 (epoch end), 15, 20, 25, 26, 30, 35, 39: the last three stay.
        Assert.Equal(new[] { "checkpoint-0000000030", "checkpoint-0000000035", "checkpoint-0000000039" }, store.List().Select(Path.GetFileName));
        foreach (var dir in store.List()) CheckpointStore.Verify(dir);
        Assert.Empty(Directory.GetDirectories(_dir, ".tmp-*"));
    }

    [Fact]
    public void A_damaged_newest_checkpoint_is_skipped_with_a_warning_and_the_previous_one_used()
    {
        using var data = SyntheticData.Separable(100);
        var model = SmallMlp(3);
        using (var t = new Trainer(model, model.parameters(), Options with { Epochs = 1 })) t.Fit(data, null, default, Store(every: 5, keep: 3));
        var newest = Path.Combine(_dir, "checkpoint-0000000013", CheckpointStore.StateFile);
        var bytes = File.ReadAllBytes(newest);
        bytes[^1] ^= 0x40;
        File.WriteAllBytes(newest, bytes);
        Directory.CreateDirectory(Path.Combine(_dir, ".tmp-checkpoint-14-leftover"));   // an interrupted save

        var warnings = new List<string>();
        var resumed = SmallMlp(4);
        using var t2 = new Trainer(resumed, resumed.parameters(), Options with { Epochs = 1 });
        Assert.True(t2.Resume(Store(warnings: warnings)));

        Assert.Equal(10, t2.State.Step);
        var warning = Assert.Single(warnings);
        Assert.Contains("checkpoint-0000000013/state.safetensors: SHA-256", warning);
        Assert.Contains("does not match", warning);
        Assert.Empty(Directory.GetDirectories(_dir, ".tmp-*"));
        Assert.Throws<InvalidDataException>(() => CheckpointStore.Verify(Path.Combine(_dir, "checkpoint-0000000013")));
    }

    [Fact]
    public void A_checkpoint_of_another_configuration_is_refused_naming_each_difference()
    {
        using var data = SyntheticData.Separable(40);
        var model = SmallMlp(3);
        using (var t = new Trainer(model, model.parameters(), Options)) t.Fit(data, null, default, Store());

        var other = SmallMlp(3);
        using var t2 = new Trainer(other, other.parameters(), Options with { BatchSize = 4 });
        var e = Assert.Throws<CheckpointMismatchException>(() => t2.Resume(Store(fingerprint: new() { ["r"] = "8" })));
        Assert.Contains("r: checkpoint 4, run 8", e.Message);
        Assert.Contains("trainer.batch_size: checkpoint 8, run 4", e.Message);
        Assert.Equal(2, e.Differences.Count);

        var wider = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 3));
        using var t3 = new Trainer(wider, wider.parameters(), Options);
        var shape = Assert.Throws<CheckpointMismatchException>(() => t3.Resume(Store()));
        Assert.Contains("parameter.0.shape: checkpoint [16,4], run [32,4]", shape.Message);
    }

    [Fact]
    public void Divergence_stops_with_the_step_and_writes_no_checkpoint_after_the_last_good_step()
    {
        using var data = SyntheticData.Separable(4);
        var order = BatchOrder.Permutation(4, 8, 0);
        data.Inputs[order[2], 1] = float.NaN;   // the third step
        var model = SmallMlp(7);
        using var t = new Trainer(model, model.parameters(), new TrainerOptions { Epochs = 2, BatchSize = 1, Seed = 8 });
        var store = Store(every: 1, keep: 10);
        var e = Assert.Throws<TrainingDivergedException>(() => t.Fit(data, null, default, store));
        Assert.Contains("at step 3", e.Message);
        Assert.Equal(new[] { "checkpoint-0000000001", "checkpoint-0000000002" }, store.List().Select(Path.GetFileName));
    }

    [Fact]
    public void A_nan_gradient_with_a_finite_loss_stops_training_too()
    {
        using var data = SyntheticData.Separable(8);
        var model = SmallMlp(7);
        // sqrt at 0 has an infinite derivative: the loss is finite, the gradient is not.
        var wrapped = new SqrtFirst(model);
        using (torch.no_grad()) foreach (var p in model.parameters().Take(2)) p.zero_();   // first layer's weight and bias
        using var t = new Trainer(wrapped, model.parameters(), new TrainerOptions { Epochs = 1, BatchSize = 8, Seed = 1 });
        var e = Assert.Throws<TrainingDivergedException>(() => t.Fit(data, null, default, Store(every: 1)));
        Assert.Equal("gradient", e.Quantity);
        Assert.Contains("at step 1", e.Message);
        Assert.Empty(Store().List());
    }

    [SkippableFact]
    public void A_full_disk_fails_the_save_with_the_directory_named_and_leaves_earlier_checkpoints_intact()
    {
        Directory.CreateDirectory(_dir);
        // A real full disk needs a small tmpfs, and mounting one needs root (or CAP_SYS_ADMIN): elsewhere the test is
        // reported skipped, never passed without running. (A write failure that needs no mount is tested below.)
        Skip.IfNot(TryMountTmpfs(_dir, "48k"), $"cannot mount a 48 KB tmpfs on {_dir} here (needs root or CAP_SYS_ADMIN)");
        try
        {
            using var data = SyntheticData.Separable(100);
            var model = nn.Sequential(nn.Linear(4, 600), nn.ReLU(), nn.Linear(600, 3));   // ~13 KB of weights, ~40 KB per checkpoint
            using var t = new Trainer(model, model.parameters(), Options);
            var e = Assert.Throws<IOException>(() => t.Fit(data, null, default, Store(every: 5, keep: 5)));
            Assert.Contains(_dir, e.Message);
            Assert.Contains("earlier checkpoints are unchanged", e.Message);
            foreach (var dir in Store().List()) CheckpointStore.Verify(dir);
            Assert.Empty(Directory.GetDirectories(_dir, ".tmp-*"));
        }
        finally
        {
            Run("umount", _dir);
        }
    }

    [Fact]
    public void A_checkpoint_directory_that_cannot_be_created_fails_with_its_path()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(_dir)!);
        File.WriteAllText(_dir, "a file where the directory should be");
        try
        {
            using var data = SyntheticData.Separable(20);
            var model = SmallMlp(3);
            using var t = new Trainer(model, model.parameters(), Options);
            var e = Assert.Throws<IOException>(() => t.Fit(data, null, default, Store(every: 1)));
            Assert.Contains(_dir, e.Message);
            Assert.Equal("a file where the directory should be", File.ReadAllText(_dir));
        }
        finally
        {
            File.Delete(_dir);
        }
    }

    private static bool TryMountTmpfs(string dir, string size) => Run("mount", "-t", "tmpfs", "-o", $"size={size}", "tmpfs", dir) == 0;

    private static int Run(string file, params string[] args)
    {
        try
        {
            using var p = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            p.WaitForExit();
            return p.ExitCode;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return -1;
        }
    }

    private sealed class SqrtFirst(nn.Module<Tensor, Tensor> inner) : nn.Module<Tensor, Tensor>("SqrtFirst")
    {
        private readonly nn.Module<Tensor, Tensor> _inner = inner;

        public override Tensor forward(Tensor x)
        {
            var first = ((TorchSharp.Modules.Sequential)_inner).children().First() as nn.Module<Tensor, Tensor>;
            var h = first!.call(x).abs().sqrt();   // the layer is all zeros: sqrt(0) is finite, its derivative is not
            return _inner.children().Skip(1).Cast<nn.Module<Tensor, Tensor>>().Aggregate(h, (a, m) => m.call(a));
        }
    }
}

/// <summary>Synchronous <see cref="IProgress{T}"/>.</summary>
internal sealed class Collect<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
