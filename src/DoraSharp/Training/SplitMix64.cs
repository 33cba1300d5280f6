namespace DoraSharp.Training;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood 2014, as in Java's <c>SplittableRandom</c>): a tiny, fully specified
/// generator whose whole state is one 64-bit number, so a data order can be reproduced in any language and
/// its position saved in a checkpoint. The same generator shuffles the bundled MNIST split
/// (see <c>data/mnist/README.md</c>).
/// <code>
/// next():  state += 0x9E3779B97F4A7C15
///          z = state
///          z = (z ^ (z &gt;&gt; 30)) * 0xBF58476D1CE4E5B9
///          z = (z ^ (z &gt;&gt; 27)) * 0x94D049BB133111EB
///          return z ^ (z &gt;&gt; 31)
/// below(n): return (next() * n) &gt;&gt; 64      // high 64 bits of the 128-bit product: 0 &lt;= result &lt; n
/// </code>
/// All arithmetic is modulo 2⁶⁴.
/// </summary>
public struct SplitMix64
{
    private const ulong Gamma = 0x9E3779B97F4A7C15;

    /// <summary>Starts the generator at <paramref name="state"/>.</summary>
    public SplitMix64(ulong state) => State = state;

    /// <summary>The whole state: saving it and constructing a generator from it resumes the stream exactly.</summary>
    public ulong State { get; private set; }

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        State += Gamma;
        return Mix(State);
    }

    /// <summary>A number in [0, <paramref name="n"/>) by Lemire's multiply-shift (no division; bias below 2⁻³² for n &lt; 2³²).</summary>
    public ulong Below(ulong n)
    {
        if (n == 0) throw new ArgumentOutOfRangeException(nameof(n), "n must be at least 1.");
        return System.Math.BigMul(Next(), n, out _);
    }

    /// <summary>SplitMix64's output function: a bijection of 64-bit numbers that scatters neighbouring inputs.</summary>
    public static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// A seed for an independent use of <paramref name="seed"/> numbered <paramref name="stream"/>:
    /// <c>Mix(seed ^ Mix(stream + 1))</c>. Different streams of one seed give unrelated numbers, so one user
    /// seed can drive pretraining order, fine-tuning order and adapter initialisation without correlation.
    /// </summary>
    public static ulong Derive(ulong seed, ulong stream) => Mix(seed ^ Mix(stream + 1));
}
