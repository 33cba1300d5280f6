namespace DoraSharp.Training;

/// <summary>The learning rate of a step under a <see cref="LearningRateSchedule"/>.</summary>
public static class LearningRates
{
    /// <summary>
    /// The rate for step <paramref name="step"/> (0-based, the step about to be taken) of
    /// <paramref name="totalSteps"/>: during the first <paramref name="warmupSteps"/> steps it rises linearly,
    /// lr·(step + 1)/warmup; afterwards, with p = (step − warmup)/(total − warmup) in [0, 1),
    /// Constant gives lr, Linear lr·(1 − p), Cosine lr·(1 + cos(π·p))/2. These are the shapes of Hugging Face's
    /// <c>get_constant_schedule_with_warmup</c>, <c>get_linear_schedule_with_warmup</c> and
    /// <c>get_cosine_schedule_with_warmup</c>, except that warm-up starts at lr/warmup rather than 0 so that
    /// no step is wasted at rate 0.
    /// </summary>
    public static double At(LearningRateSchedule schedule, double baseRate, long step, long totalSteps, long warmupSteps)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        if (step < warmupSteps) return baseRate * (step + 1) / warmupSteps;
        var decaySteps = totalSteps - warmupSteps;
        var p = decaySteps <= 0 ? 0.0 : System.Math.Min(1.0, (double)(step - warmupSteps) / decaySteps);
        return schedule switch
        {
            LearningRateSchedule.Constant => baseRate,
            LearningRateSchedule.Linear => baseRate * (1 - p),
            LearningRateSchedule.Cosine => baseRate * (1 + System.Math.Cos(System.Math.PI * p)) / 2,
            _ => throw new ArgumentOutOfRangeException(nameof(schedule), schedule, "unknown schedule"),
        };
    }
}
