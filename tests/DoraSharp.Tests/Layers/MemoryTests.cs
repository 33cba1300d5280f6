using System.Diagnostics;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>Process RSS is shared by every test running at the same time, so these run alone.</summary>
[CollectionDefinition(nameof(MemoryTests), DisableParallelization = true)]
public sealed class MemoryTestsCollection;

[Collection(nameof(MemoryTests))]
public sealed class MemoryTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Two_thousand_training_steps_do_not_grow_memory(bool dora)
    {
        torch.manual_seed(11);
        var model = new Mlp();
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 4, LoraAlpha = 8, UseDora = dora, LoraDropout = 0.1, TargetModulesRegex = @"layers\.\d" });
        var optimizer = torch.optim.Adam(lora.TrainableParameters(), lr: 1e-3);
        var x = torch.rand(64, 784);
        var labels = torch.randint(0, 10, 64, dtype: ScalarType.Int64);
        model.train();

        void Step()
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(x), labels);
            loss.backward();
            optimizer.step();
        }

        // Warm-up: optimizer state, JIT tiers and the allocator's pools settle first.
        for (var i = 0; i < 300; i++) Step();
        GC.Collect(); GC.WaitForPendingFinalizers();
        var liveBefore = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var rssBefore = NativeResidentBytes();
        // Measured every 250 steps: each measurement collects garbage, as a long run's GC would. Without it,
        // native memory held by finalizable TorchSharp handles (freed by their finalizers) piles up between
        // collections and reads as growth although nothing leaks.
        var samples = new List<long>();
        for (var i = 0; i < 2000; i++)
        {
            Step();
            if (i % 250 != 249) continue;
            samples.Add(NativeResidentBytes());
            output.WriteLine($"step {i + 1}: {samples[^1] / 1e6:F1} MB");
        }
        GC.Collect(); GC.WaitForPendingFinalizers();
        var liveAfter = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        var rssAfter = NativeResidentBytes();
        output.WriteLine($"live tensors {liveBefore} -> {liveAfter}; RSS less the managed heap {rssBefore / 1e6:F1} MB -> {rssAfter / 1e6:F1} MB");

        Assert.Equal(liveBefore, liveAfter);  // not one tensor leaked per step
        // A leak only grows, so every late sample stays high; a transient spike elsewhere in the process (the
        // GC returning a region between its bookkeeping and the RSS read) moves one sample. Judge the lowest
        // of the last three.
        var end = samples.TakeLast(2).Append(rssAfter).Min();
        Assert.True(end - rssBefore < 8_000_000, $"RSS (less the managed heap) grew by {(end - rssBefore) / 1e6:F1} MB over 2000 steps");
    }

    /// <summary>
    /// Resident memory minus what the .NET GC has committed: the GC keeps freed regions committed for a
    /// while, which would show as growth that is not ours; libtorch's allocations are what must not grow.
    /// </summary>
    private static long NativeResidentBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        using var process = Process.GetCurrentProcess();
        return process.WorkingSet64 - GC.GetGCMemoryInfo().TotalCommittedBytes;
    }
}
