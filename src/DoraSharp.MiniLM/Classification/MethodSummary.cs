namespace DoraSharp.MiniLM.Classification;

/// <summary>One method's runs over every seed, summarised.</summary>
/// <param name="Method">The method.</param>
/// <param name="Runs">One result per seed, in seed order.</param>
public sealed record MethodSummary(FineTuningMethod Method, IReadOnlyList<RunResult> Runs)
{
    /// <summary>Test accuracy per seed.</summary>
    public IReadOnlyList<double> Accuracies => Runs.Select(r => r.Accuracy).ToArray();

    /// <summary>Mean test accuracy over the seeds.</summary>
    public double MeanAccuracy => Accuracies.Average();

    /// <summary>
    /// Sample standard deviation (n − 1) of the test accuracy over the seeds; 0 for a single seed, where it
    /// says nothing about the spread.
    /// </summary>
    public double StdAccuracy
    {
        get
        {
            if (Runs.Count < 2) return 0;
            var mean = MeanAccuracy;
            return Math.Sqrt(Accuracies.Sum(a => (a - mean) * (a - mean)) / (Runs.Count - 1));
        }
    }

    /// <summary>Trainable parameters (the same in every run of a method).</summary>
    public long TrainableParameters => Runs[0].TrainableParameters;

    /// <summary>Test examples per run.</summary>
    public int TestCount => Runs[0].TestCount;

    /// <summary>Mean training wall time over the seeds.</summary>
    public TimeSpan MeanTrainTime => TimeSpan.FromTicks((long)Runs.Average(r => r.TrainTime.Ticks));
}
