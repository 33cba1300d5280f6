using DoraSharp.Examples.Data;
using DoraSharp.Examples.Experiments;
using DoraSharp.Tests.Examples.Data;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>
/// The worked example on a small slice of the bundled MNIST (640 train, 300 test images, one epoch each), run
/// once for every test of a class: two seeds, the demo's four arms, the shift task.
/// </summary>
public sealed class TinyExperiment : IDisposable
{
    public const int TrainImages = 640;
    public const int TestImages = 300;

    public TinyExperiment()
    {
        Settings = new ExperimentSettings { Seeds = 2, PretrainEpochs = 1, FineTuneEpochs = 1 };
        Arms = FineTuneExperiment.DemoArms(4, 8);
        Data = Load(ExperimentTask.Shift);
        Result = FineTuneExperiment.Run(Data, Settings, Arms,
            new Sink(p => Phases.Add((p.Phase, p.Seed))),
            trained => Trained.Add((trained.Arm, trained.Seed, trained.Adapters is not null, trained.Adapters?.Layers.Count ?? 0)));
    }

    public ExperimentSettings Settings { get; }
    public IReadOnlyList<FineTuneArm> Arms { get; }
    public ExperimentData Data { get; }
    public ExperimentResult Result { get; }

    /// <summary>(phase, seed) of every progress report, in order.</summary>
    public List<(string Phase, long Seed)> Phases { get; } = [];

    /// <summary>What the onTrained callback saw: arm, seed, whether adapters were passed, how many layers they had.</summary>
    public List<(FineTuneArm Arm, long Seed, bool HasAdapters, int AdaptedLayers)> Trained { get; } = [];

    public static ExperimentData Load(ExperimentTask task)
    {
        using var train = DatasetCatalog.Load("mnist", RepositoryData.MnistFolder, train: true);
        using var test = DatasetCatalog.Load("mnist", RepositoryData.MnistFolder, train: false);
        return ExperimentData.Create("mnist", ImageTransforms.Take(train, TrainImages), ImageTransforms.Take(test, TestImages), task);
    }

    public void Dispose() => Data.Dispose();

    private sealed class Sink(Action<ExperimentProgress> action) : IProgress<ExperimentProgress>
    {
        public void Report(ExperimentProgress value) => action(value);
    }
}
