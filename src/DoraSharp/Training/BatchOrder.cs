namespace DoraSharp.Training;

/// <summary>
/// The order in which a <see cref="Trainer"/> visits the examples: a fresh shuffle each epoch that is a pure
/// function of (seed, epoch). A position in training is therefore fully described by
/// (seed, epoch, batch index): nothing else needs saving to continue the same order after a restart.
/// </summary>
public static class BatchOrder
{
    /// <summary>
    /// The permutation of 0 … <paramref name="count"/> − 1 used in epoch <paramref name="epoch"/>:
    /// the list [0, 1, …, count − 1] shuffled by Fisher–Yates (Durstenfeld: for i from count − 1 down to 1,
    /// j = below(i + 1), swap a[i] and a[j]) with a <see cref="SplitMix64"/> started at
    /// <c>SplitMix64.Derive(seed, epoch)</c>.
    /// </summary>
    /// <param name="count">Number of examples; at least 0.</param>
    /// <param name="seed">The data-order seed.</param>
    /// <param name="epoch">The epoch, 0-based.</param>
    public static int[] Permutation(int count, ulong seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        var order = new int[count];
        for (var i = 0; i < count; i++) order[i] = i;
        var rng = new SplitMix64(SplitMix64.Derive(seed, (ulong)epoch));
        for (var i = count - 1; i > 0; i--)
        {
            var j = (int)rng.Below((ulong)i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    /// <summary>The number of batches in one epoch: ⌈count / batchSize⌉ (the last batch may be smaller, as PyTorch's DataLoader with drop_last=False).</summary>
    public static int BatchesPerEpoch(int count, int batchSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        return (int)(((long)count + batchSize - 1) / batchSize);
    }
}
