namespace DoraSharp.Training;

/// <summary>
/// How the learning rate changes over training. Every schedule is a pure function of the step number
/// (see <see cref="LearningRates.At"/>), so its state in a checkpoint is just the step.
/// </summary>
public enum LearningRateSchedule
{
    /// <summary>The base learning rate throughout (after any warm-up).</summary>
    Constant,

    /// <summary>From the base rate down to 0 in a straight line over the steps after warm-up.</summary>
    Linear,

    /// <summary>From the base rate down to 0 along half a cosine over the steps after warm-up.</summary>
    Cosine,
}
