using static TorchSharp.torch;

namespace DoraSharp.MiniLM;

/// <summary>
/// A batch of tokenized sentences padded to a common length, in the three inputs a BERT encoder takes.
/// Arrays are row-major <c>(B, T)</c>.
/// </summary>
public sealed class TokenizedBatch
{
    /// <summary>Wraps row-major <c>(B, T)</c> arrays; throws when a length or a mask value is wrong.</summary>
    public TokenizedBatch(int batchSize, int sequenceLength, long[] inputIds, long[] attentionMask, long[] tokenTypeIds)
    {
        if (batchSize < 0 || sequenceLength < 0)
            throw new ArgumentException($"TokenizedBatch: batch size {batchSize} and sequence length {sequenceLength} must be >= 0.");
        long n = (long)batchSize * sequenceLength;
        foreach (var (a, name) in new[] { (inputIds, "input_ids"), (attentionMask, "attention_mask"), (tokenTypeIds, "token_type_ids") })
        {
            ArgumentNullException.ThrowIfNull(a, name);
            if (a.Length != n)
                throw new ArgumentException($"TokenizedBatch: {name} has {a.Length} entries, expected {batchSize} x {sequenceLength} = {n}.");
        }
        if (Array.FindIndex(attentionMask, m => m is not (0 or 1)) is var bad and >= 0)
            throw new ArgumentException($"TokenizedBatch: attention_mask[{bad}] is {attentionMask[bad]}, expected 0 or 1.");
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
        var lengths = new int[batchSize];
        for (int b = 0; b < batchSize; b++)
            for (int t = 0; t < sequenceLength; t++)
                lengths[b] += (int)attentionMask[(long)b * sequenceLength + t];
        Lengths = lengths;
    }

    /// <summary>Number of sentences, B.</summary>
    public int BatchSize { get; }

    /// <summary>Padded length, T: the longest sentence of the batch in word pieces, [CLS] and [SEP] included.</summary>
    public int SequenceLength { get; }

    /// <summary>Word-piece ids, <c>(B, T)</c> row-major; padding is [PAD] (id 0 in BERT's vocabulary).</summary>
    public long[] InputIds { get; }

    /// <summary>1 on real tokens, 0 on padding, <c>(B, T)</c> row-major.</summary>
    public long[] AttentionMask { get; }

    /// <summary>Segment ids, <c>(B, T)</c> row-major; all 0 for single sentences.</summary>
    public long[] TokenTypeIds { get; }

    /// <summary>Real tokens per sentence ([CLS] and [SEP] included).</summary>
    public IReadOnlyList<int> Lengths { get; }

    /// <summary>The ids of sentence <paramref name="row"/> without padding.</summary>
    public long[] RowIds(int row)
    {
        if ((uint)row >= (uint)BatchSize)
            throw new ArgumentOutOfRangeException(nameof(row), $"TokenizedBatch: row {row} is outside 0..{BatchSize - 1}.");
        return InputIds.AsSpan(row * SequenceLength, Lengths[row]).ToArray();
    }

    /// <summary>The three inputs as int64 tensors <c>(B, T)</c> on the CPU; the caller owns them.</summary>
    public (Tensor InputIds, Tensor AttentionMask, Tensor TokenTypeIds) ToTensors()
    {
        long[] shape = [BatchSize, SequenceLength];
        return (tensor(InputIds, shape), tensor(AttentionMask, shape), tensor(TokenTypeIds, shape));
    }
}
