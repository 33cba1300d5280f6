using DoraSharp.Examples.Experiments;
using TorchSharp;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>An experiment disposes every model, adapter and optimizer it creates (runs alone: it counts live tensors).</summary>
[Collection(nameof(MemoryTests))]
public sealed class ExperimentMemoryTests
{
    [Fact]
    public void A_run_leaves_no_tensor_alive()
    {
        using var data = TinyExperiment.Load(ExperimentTask.Shift);
        var settings = new ExperimentSettings { FineTuneEpochs = 1 };
        var arms = FineTuneExperiment.DemoArms(2, 4);
        FineTuneExperiment.Run(data, settings, arms);   // first use: lazily created globals settle

        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        FineTuneExperiment.Run(data, settings, arms);
        FineTuneExperiment.Run(data, settings with { Seed = 7 }, arms);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.Equal(before, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
    }
}
