namespace DoraSharp.Training;

/// <summary>
/// Training produced a NaN or infinite loss (or gradient norm) under <see cref="NonFiniteLossPolicy.Stop"/>.
/// The model holds the weights from before the offending step.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception for the step that diverged.</summary>
    public TrainingDivergedException(string quantity, double value, TrainingState state, double learningRate)
        : base($"Training diverged: the {quantity} was {Format(value)} at step {state.Step + 1} (epoch {state.Epoch + 1}, batch {state.BatchInEpoch + 1}, " +
               $"learning rate {learningRate:G4}); lower the learning rate, set a maximum gradient norm, or choose to skip such steps.")
    {
        Quantity = quantity;
        Value = value;
        State = state;
    }

    /// <summary>"loss", "gradient norm" (with clipping) or "gradient" (a NaN or infinite gradient element, without clipping).</summary>
    public string Quantity { get; }

    /// <summary>The non-finite value.</summary>
    public double Value { get; }

    /// <summary>The trainer's state just before the offending step (a checkpoint taken now resumes at it).</summary>
    public TrainingState State { get; }

    private static string Format(double v) => double.IsNaN(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity";
}
