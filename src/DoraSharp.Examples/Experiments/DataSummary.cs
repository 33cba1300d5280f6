namespace DoraSharp.Examples.Experiments;

/// <summary>Which data an experiment used, for reports.</summary>
/// <param name="Dataset">The data set's name.</param>
/// <param name="Task">Shift or Continue.</param>
/// <param name="FineTuneDomain">How the fine-tuning images differ from the pretraining ones.</param>
/// <param name="TrainImages">Images in the train split (pretraining and fine-tuning each use all of them).</param>
/// <param name="TestImages">Images in the test split (every evaluation uses all of them).</param>
/// <param name="TrainSource">Where the train split came from.</param>
/// <param name="TestSource">Where the test split came from.</param>
public sealed record DataSummary(string Dataset, ExperimentTask Task, string FineTuneDomain, int TrainImages, int TestImages, string TrainSource, string TestSource)
{
    /// <summary>Summarises <paramref name="data"/>.</summary>
    public static DataSummary Of(ExperimentData data) => new(data.Dataset, data.Task, data.FineTuneDomain,
        data.FineTuneTrain.Count, data.FineTuneTest.Count, data.PretrainTrain.Source, data.PretrainTest.Source);
}
