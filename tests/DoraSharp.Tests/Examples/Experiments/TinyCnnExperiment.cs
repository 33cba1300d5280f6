using DoraSharp.Examples.Experiments;

namespace DoraSharp.Tests.Examples.Experiments;

/// <summary>
/// The worked example with <see cref="ExperimentModel.Cnn"/> on the slice of <see cref="TinyExperiment"/> (640 train,
/// 300 test images), run once for every test of a class: one seed, the demo's four arms, the shift task, one epoch
/// of pretraining and two of fine-tuning.
/// </summary>
public sealed class TinyCnnExperiment : IDisposable
{
    public TinyCnnExperiment()
    {
        Settings = new ExperimentSettings { Model = ExperimentModel.Cnn, PretrainEpochs = 1, FineTuneEpochs = 2 };
        Arms = FineTuneExperiment.DemoArms(4, 8);
        Data = TinyExperiment.Load(ExperimentTask.Shift);
        Result = FineTuneExperiment.Run(Data, Settings, Arms, onTrained: trained => Trained.Add(
            (trained.Arm, trained.Model.GetType(), trained.Adapters?.Layers.ToDictionary(l => l.Key, l => l.Value.GetType()) ?? [])));
    }

    public ExperimentSettings Settings { get; }
    public IReadOnlyList<FineTuneArm> Arms { get; }
    public ExperimentData Data { get; }
    public ExperimentResult Result { get; }

    /// <summary>What the onTrained callback saw: arm, the model's type, and the adapter type at each adapted path.</summary>
    public List<(FineTuneArm Arm, Type Model, Dictionary<string, Type> Adapters)> Trained { get; } = [];

    public void Dispose() => Data.Dispose();
}
