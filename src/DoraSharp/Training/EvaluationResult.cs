namespace DoraSharp.Training;

/// <summary>Classification accuracy and how many examples it was measured on.</summary>
/// <param name="Correct">Examples whose highest logit was at their label.</param>
/// <param name="Count">Examples the model actually scored (counted from its outputs, not from the split's size).</param>
public sealed record EvaluationResult(long Correct, long Count)
{
    /// <summary>Correct / Count, in [0, 1].</summary>
    public double Accuracy => Count == 0 ? double.NaN : (double)Correct / Count;
}
