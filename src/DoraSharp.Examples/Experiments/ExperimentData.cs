using DoraSharp.Examples.Data;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// The four splits an experiment uses: pretraining train/test (the images as they are) and fine-tuning
/// train/test (the same images, turned 90° for <see cref="ExperimentTask.Shift"/>; the very same splits for
/// <see cref="ExperimentTask.Continue"/>). Owns its splits.
/// </summary>
public sealed class ExperimentData : IDisposable
{
    private ExperimentData(string dataset, ExperimentTask task, DatasetSplit pretrainTrain, DatasetSplit pretrainTest,
        DatasetSplit fineTuneTrain, DatasetSplit fineTuneTest)
    {
        Dataset = dataset;
        Task = task;
        PretrainTrain = pretrainTrain;
        PretrainTest = pretrainTest;
        FineTuneTrain = fineTuneTrain;
        FineTuneTest = fineTuneTest;
    }

    /// <summary>The data set's name, e.g. "mnist".</summary>
    public string Dataset { get; }

    /// <summary>The task the fine-tuning splits were made for.</summary>
    public ExperimentTask Task { get; }

    /// <summary>Pretraining examples (the train split as it is).</summary>
    public DatasetSplit PretrainTrain { get; }

    /// <summary>The test split as it is: the pretrained model's accuracy is measured here.</summary>
    public DatasetSplit PretrainTest { get; }

    /// <summary>Fine-tuning examples.</summary>
    public DatasetSplit FineTuneTrain { get; }

    /// <summary>The split every arm is evaluated on, in full.</summary>
    public DatasetSplit FineTuneTest { get; }

    /// <summary>How the fine-tuning images differ from the pretraining ones, for display.</summary>
    public string FineTuneDomain => Task == ExperimentTask.Shift ? "turned 90° counter-clockwise" : "unchanged (same data as pretraining)";

    /// <summary>Loads a named data set (see <see cref="DatasetCatalog.Load"/>) and prepares the splits of <paramref name="task"/>.</summary>
    /// <exception cref="ArgumentException">Unknown data set name.</exception>
    /// <exception cref="IOException">The folder or a file is missing or invalid; the message says which and what to do.</exception>
    public static ExperimentData Load(string dataset, string? dataDir, ExperimentTask task)
    {
        var train = DatasetCatalog.Load(dataset, dataDir, train: true);
        DatasetSplit? test = null;
        try
        {
            test = DatasetCatalog.Load(dataset, dataDir, train: false);
            return Create(dataset.Trim().ToLowerInvariant(), train, test, task);
        }
        catch
        {
            train.Dispose();
            test?.Dispose();
            throw;
        }
    }

    /// <summary>Prepares the splits of <paramref name="task"/> from a train and a test split, taking ownership of both.</summary>
    public static ExperimentData Create(string dataset, DatasetSplit train, DatasetSplit test, ExperimentTask task)
    {
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(test);
        if (!Enum.IsDefined(task)) throw new ArgumentOutOfRangeException(nameof(task), task, "expected Shift or Continue");
        if (task == ExperimentTask.Continue) return new ExperimentData(dataset, task, train, test, train, test);
        var rotatedTrain = ImageTransforms.Rotate(train);
        var rotatedTest = ImageTransforms.Rotate(test);
        return new ExperimentData(dataset, task, train, test, rotatedTrain, rotatedTest);
    }

    /// <summary>Releases every split (each once, as the Continue task shares them).</summary>
    public void Dispose()
    {
        foreach (var split in new[] { PretrainTrain, PretrainTest, FineTuneTrain, FineTuneTest }.Distinct())
            split.Dispose();
    }
}
