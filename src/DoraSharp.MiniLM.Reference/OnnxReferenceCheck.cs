using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.Reference;

/// <summary>
/// Runs sentences through <see cref="BertEncoder"/> with the pretrained weights and through ONNX Runtime on the
/// package's ONNX file, and reports the largest differences (for tests and for <c>dora minilm-check</c>).
/// The ORT side is pooled and normalised in plain C# (double sums), so the pooling is checked too.
/// </summary>
public static class OnnxReferenceCheck
{
    /// <summary>
    /// Compares the two on <paramref name="sentences"/>, tokenized with <paramref name="maxLength"/> and run in
    /// padded batches of <paramref name="batchSize"/> (so padding and the attention mask are exercised).
    /// Sets TorchSharp's thread count to <paramref name="threads"/> (a process-wide setting) and gives ORT the same.
    /// </summary>
    public static OnnxReferenceCheckResult Run(
        IReadOnlyList<string> sentences,
        int threads = 2,
        int batchSize = 16,
        int maxLength = MiniLmTokenizer.DefaultMaxLength)
    {
        ArgumentNullException.ThrowIfNull(sentences);
        if (sentences.Count == 0) throw new ArgumentException("OnnxReferenceCheck: no sentences given.", nameof(sentences));
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"OnnxReferenceCheck: batchSize must be >= 1, got {batchSize}.");
        torch.set_num_threads(threads);

        var clock = Stopwatch.StartNew();
        using var model = MiniLmWeights.LoadPretrained();
        var torchLoad = clock.Elapsed;

        clock.Restart();
        using var ort = new OnnxMiniLm(threads);
        var ortLoad = clock.Elapsed;

        clock.Restart();
        var tokenizer = MiniLmTokenizer.FromPackage(maxLength);
        var batches = sentences.Chunk(batchSize).Select(chunk => tokenizer.EncodeBatch(chunk)).ToArray();
        var tokenize = clock.Elapsed;

        var torchRun = TimeSpan.Zero;
        var ortRun = TimeSpan.Zero;
        var acc = new Accumulator();
        foreach (var batch in batches)
        {
            clock.Restart();
            var (hidden, pooled, normalized, poolerOut) = RunTorch(model, batch);
            torchRun += clock.Elapsed;

            clock.Restart();
            var (ortHidden, ortPooler, c) = ort.Run(batch);
            ortRun += clock.Elapsed;

            Compare(batch, c, hidden, pooled, normalized, poolerOut, ortHidden, ortPooler, acc);
        }

        return new OnnxReferenceCheckResult(
            Sentences: sentences.Count,
            Batches: batches.Length,
            RealTokens: batches.Sum(b => b.Lengths.Sum()),
            PaddedPositions: batches.Sum(b => b.BatchSize * b.SequenceLength - b.Lengths.Sum()),
            LongestSequence: batches.Max(b => b.SequenceLength),
            MaxAbsDiffHidden: acc.Hidden,
            MaxAbsDiffPooled: acc.Pooled,
            MaxAbsDiffNormalized: acc.Normalized,
            MaxAbsDiffPoolerOutput: acc.Pooler,
            MinCosine: acc.MinCosine,
            TorchLoadTime: torchLoad,
            OrtLoadTime: ortLoad,
            TokenizeTime: tokenize,
            TorchRunTime: torchRun,
            OrtRunTime: ortRun);
    }

    /// <summary>
    /// TorchSharp's outputs for <paramref name="batch"/> as row-major arrays: last hidden state <c>(B, T, C)</c>,
    /// mean-pooled <c>(B, C)</c>, normalised <c>(B, C)</c> and pooler output <c>(B, C)</c>. Runs under no_grad;
    /// put the model in eval mode first.
    /// </summary>
    public static (float[] Hidden, float[] Pooled, float[] Normalized, float[] PoolerOutput) RunTorch(BertEncoder model, TokenizedBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var (ids, mask, types) = batch.ToTensors();
        var output = model.call(ids, mask, types);
        var pooled = SentencePooling.MeanPool(output.LastHiddenState, mask);  // (B, C)
        var normalized = SentencePooling.L2Normalize(pooled);                 // (B, C)
        return (output.LastHiddenState.data<float>().ToArray(), pooled.data<float>().ToArray(),
            normalized.data<float>().ToArray(), output.PoolerOutput.data<float>().ToArray());
    }

    private static void Compare(
        TokenizedBatch batch, int c,
        float[] hidden, float[] pooled, float[] normalized, float[] poolerOut,
        float[] ortHidden, float[] ortPooler, Accumulator acc)
    {
        int t = batch.SequenceLength;
        if (hidden.Length != ortHidden.Length || hidden.Length != batch.BatchSize * t * c)
            throw new InvalidOperationException(
                $"OnnxReferenceCheck: last_hidden_state sizes differ: TorchSharp {hidden.Length}, ORT {ortHidden.Length}, expected {batch.BatchSize} x {t} x {c}.");
        var mean = new double[c];
        for (int b = 0; b < batch.BatchSize; b++)
        {
            Array.Clear(mean);
            int real = 0;
            for (int p = 0; p < t; p++)
            {
                if (batch.AttentionMask[b * t + p] == 0) continue; // padding positions hold garbage in both
                real++;
                int o = (b * t + p) * c;
                for (int k = 0; k < c; k++)
                {
                    acc.Hidden = Math.Max(acc.Hidden, Math.Abs(hidden[o + k] - ortHidden[o + k]));
                    mean[k] += ortHidden[o + k];
                }
            }
            double norm = 0;
            for (int k = 0; k < c; k++)
            {
                mean[k] /= Math.Max(real, 1e-9);
                norm += mean[k] * mean[k];
            }
            norm = Math.Max(Math.Sqrt(norm), 1e-12);
            double cosine = 0;
            for (int k = 0; k < c; k++)
            {
                int o = b * c + k;
                acc.Pooled = Math.Max(acc.Pooled, Math.Abs(pooled[o] - mean[k]));
                acc.Normalized = Math.Max(acc.Normalized, Math.Abs(normalized[o] - mean[k] / norm));
                acc.Pooler = Math.Max(acc.Pooler, Math.Abs(poolerOut[o] - ortPooler[o]));
                cosine += normalized[o] * (mean[k] / norm);
            }
            acc.MinCosine = Math.Min(acc.MinCosine, cosine);
        }
    }

    private sealed class Accumulator
    {
        public double Hidden, Pooled, Normalized, Pooler;
        public double MinCosine = double.PositiveInfinity;
    }
}
