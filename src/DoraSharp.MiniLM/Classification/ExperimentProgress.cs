namespace DoraSharp.MiniLM.Classification;

/// <summary>What <see cref="ClassificationExperiment"/> is doing.</summary>
public enum ExperimentPhase
{
    /// <summary>Computing the frozen encoder's embeddings of the training and test sets (once, for <see cref="FineTuningMethod.Frozen"/>).</summary>
    Embedding,

    /// <summary>Optimizer steps.</summary>
    Training,

    /// <summary>Classifying the test set.</summary>
    Evaluating,
}

/// <summary>
/// A progress report: <paramref name="Done"/> of <paramref name="Total"/> units of one run (training steps plus
/// evaluation batches), or of the shared embedding pass when <paramref name="Seed"/> is null.
/// </summary>
/// <param name="Method">The method being run.</param>
/// <param name="Seed">The run's seed; null for the embedding pass shared by every seed.</param>
/// <param name="Phase">The current phase.</param>
/// <param name="Done">Units finished.</param>
/// <param name="Total">Units in the run.</param>
/// <param name="Loss">Mean training loss over the current epoch so far, while training.</param>
public sealed record ExperimentProgress(FineTuningMethod Method, int? Seed, ExperimentPhase Phase, int Done, int Total, double? Loss);
