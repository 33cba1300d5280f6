namespace DoraSharp.Examples.Experiments;

/// <summary>Mean and sample standard deviation of one number measured once per seed.</summary>
public sealed record Summary
{
    /// <summary>Summarises <paramref name="values"/> (at least one).</summary>
    public Summary(IEnumerable<double> values)
    {
        Values = values.ToArray();
        if (Values.Count == 0) throw new ArgumentException("A summary needs at least one value.", nameof(values));
        Mean = Values.Average();
        // Sample (n − 1) standard deviation: the seeds are a sample of all seeds one could have run.
        Std = Values.Count < 2 ? null : System.Math.Sqrt(Values.Sum(v => (v - Mean) * (v - Mean)) / (Values.Count - 1));
    }

    /// <summary>The values, in seed order.</summary>
    public IReadOnlyList<double> Values { get; }

    /// <summary>Their mean.</summary>
    public double Mean { get; }

    /// <summary>Their sample standard deviation (divisor n − 1); null with a single value.</summary>
    public double? Std { get; }
}
