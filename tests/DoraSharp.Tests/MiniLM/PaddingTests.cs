using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Reference;
using Xunit;
using Xunit.Abstractions;

namespace DoraSharp.Tests.MiniLM;

/// <summary>Padding and the attention mask: TorchSharp and ONNX Runtime on a padded batch.</summary>
[Collection(MiniLmCollection.Name)]
public sealed class PaddingTests(MiniLmFixture fixture, ITestOutputHelper output)
{
    private static readonly string[] Sentences =
    [
        "Short one.",
        "This sentence is a good deal longer than the first, so the first one is padded with many [PAD] tokens.",
        "Medium length, with punctuation!",
    ];

    private static double MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double max = 0;
        for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[i]));
        return max;
    }

    [Fact]
    public void Padded_batch_matches_onnx_runtime_and_each_sentence_run_alone()
    {
        var batch = fixture.Tokenizer.EncodeBatch(Sentences);
        Assert.True(batch.Lengths[0] < batch.SequenceLength);
        var (hidden, pooled, _, _) = OnnxReferenceCheck.RunTorch(fixture.Model, batch);
        var (ortHidden, _, c) = fixture.Ort.Run(batch);
        int t = batch.SequenceLength;

        double vsOrt = 0, vsAlone = 0, pooledVsAlone = 0;
        for (int b = 0; b < batch.BatchSize; b++)
        {
            int n = batch.Lengths[b];
            var rows = hidden.AsSpan(b * t * c, n * c);
            vsOrt = Math.Max(vsOrt, MaxAbsDiff(rows, ortHidden.AsSpan(b * t * c, n * c)));

            var single = fixture.Tokenizer.EncodeBatch([Sentences[b]]);
            Assert.Equal(n, single.SequenceLength);
            var (aloneHidden, alonePooled, _, _) = OnnxReferenceCheck.RunTorch(fixture.Model, single);
            vsAlone = Math.Max(vsAlone, MaxAbsDiff(rows, aloneHidden));
            pooledVsAlone = Math.Max(pooledVsAlone, MaxAbsDiff(pooled.AsSpan(b * c, c), alonePooled));
        }
        output.WriteLine($"padded batch: vs ORT {vsOrt:E2}, vs unpadded {vsAlone:E2}, pooled vs unpadded {pooledVsAlone:E2}");
        Assert.True(vsOrt <= 1e-4, $"padded batch differs from ORT by {vsOrt:E3}");
        Assert.True(vsAlone <= 1e-4, $"padding changes real positions by {vsAlone:E3}");
        Assert.True(pooledVsAlone <= 1e-4, $"padding changes the pooled embedding by {pooledVsAlone:E3}");
    }

    [Fact]
    public void Ignoring_the_mask_changes_the_padded_sentence_in_both_runtimes_alike()
    {
        var batch = fixture.Tokenizer.EncodeBatch(Sentences);
        var unmasked = new TokenizedBatch(batch.BatchSize, batch.SequenceLength, batch.InputIds,
            Enumerable.Repeat(1L, batch.AttentionMask.Length).ToArray(), batch.TokenTypeIds);
        var (masked, _, _, _) = OnnxReferenceCheck.RunTorch(fixture.Model, batch);
        var (attendsPadding, _, _, _) = OnnxReferenceCheck.RunTorch(fixture.Model, unmasked);
        var (ortAttendsPadding, _, c) = fixture.Ort.Run(unmasked);

        int n = batch.Lengths[0] * c;
        double effect = MaxAbsDiff(masked.AsSpan(0, n), attendsPadding.AsSpan(0, n));
        double agreement = MaxAbsDiff(attendsPadding, ortAttendsPadding);
        output.WriteLine($"mask effect on sentence 0: {effect:F3}; TorchSharp vs ORT without mask: {agreement:E2}");
        Assert.True(effect > 0.1, $"attending to padding moved sentence 0 by only {effect}");
        Assert.True(agreement <= 1e-4, $"without the mask TorchSharp and ORT differ by {agreement:E3}");
    }
}
