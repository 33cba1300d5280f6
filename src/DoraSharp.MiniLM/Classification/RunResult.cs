namespace DoraSharp.MiniLM.Classification;

/// <summary>The outcome of one method trained with one seed.</summary>
/// <param name="Method">What was trained besides the head.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Correct">Test examples classified correctly.</param>
/// <param name="TestCount">Test examples.</param>
/// <param name="TrainableParameters">Parameters the optimizers updated, head included.</param>
/// <param name="TotalParameters">All parameters of the classifier (encoder, adapters, head).</param>
/// <param name="TrainTime">Wall time of training; for <see cref="FineTuningMethod.Frozen"/> it includes the
/// (shared) embedding of the training set, which a single run would need too.</param>
/// <param name="EvalTime">Wall time of classifying the test set (for Frozen: embedding it plus the head).</param>
/// <param name="FinalTrainLoss">Mean cross-entropy over the last epoch.</param>
public sealed record RunResult(
    FineTuningMethod Method,
    int Seed,
    int Correct,
    int TestCount,
    long TrainableParameters,
    long TotalParameters,
    TimeSpan TrainTime,
    TimeSpan EvalTime,
    double FinalTrainLoss)
{
    /// <summary>Test accuracy, Correct / TestCount.</summary>
    public double Accuracy => (double)Correct / TestCount;
}
