using static TorchSharp.torch;

namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// Labelled sentences tokenized once ([CLS] pieces [SEP], truncated), ready to be cut into padded batches in any
/// order. Tokenizing up front keeps the C# tokenizer out of every epoch and makes batches cheap to rebuild.
/// </summary>
public sealed class EncodedExamples
{
    private readonly int[][] ids;
    private readonly int[] labels;

    /// <summary>Tokenizes <paramref name="texts"/> with <paramref name="tokenizer"/>; <paramref name="labels"/> are class indices.</summary>
    public EncodedExamples(MiniLmTokenizer tokenizer, IReadOnlyList<string> texts, IReadOnlyList<int> labels)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentNullException.ThrowIfNull(labels);
        if (texts.Count != labels.Count)
            throw new ArgumentException($"EncodedExamples: {texts.Count} texts but {labels.Count} labels.");
        if (labels.FirstOrDefault(l => l < 0) is var bad && bad < 0)
            throw new ArgumentException($"EncodedExamples: label {bad} is negative; labels are class indices.");
        ids = texts.Select(tokenizer.Encode).ToArray();
        this.labels = labels.ToArray();
    }

    /// <summary>Number of examples.</summary>
    public int Count => labels.Length;

    /// <summary>Class index of each example.</summary>
    public IReadOnlyList<int> Labels => labels;

    /// <summary>Length of each example in word pieces, [CLS] and [SEP] included.</summary>
    public IEnumerable<int> Lengths => ids.Select(x => x.Length);

    /// <summary>
    /// The examples at <paramref name="indices"/> as int64 tensors padded with [PAD] (id 0) to the longest of them:
    /// input ids, attention mask and token types <c>(B, T)</c>, and labels <c>(B)</c>. The caller owns them.
    /// </summary>
    public (Tensor InputIds, Tensor AttentionMask, Tensor TokenTypeIds, Tensor Labels) Batch(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        if (indices.Count == 0) throw new ArgumentException("EncodedExamples: a batch needs at least one example.", nameof(indices));
        int b = indices.Count, t = indices.Max(i => ids[i].Length);
        var inputIds = new long[b * t];
        var mask = new long[b * t];
        var batchLabels = new long[b];
        for (int row = 0; row < b; row++)
        {
            var example = ids[indices[row]];
            for (int p = 0; p < example.Length; p++)
            {
                inputIds[row * t + p] = example[p];
                mask[row * t + p] = 1;
            }
            batchLabels[row] = labels[indices[row]];
        }
        long[] shape = [b, t];
        return (tensor(inputIds, shape), tensor(mask, shape), zeros(shape, ScalarType.Int64), tensor(batchLabels));
    }
}
