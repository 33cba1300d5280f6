using DoraSharp.MiniLM.OwnData;
using Xunit;

namespace DoraSharp.Tests.OwnData;

/// <summary>Metrics and the validation split, checked against numbers worked out by hand.</summary>
public sealed class OwnDataMetricsTests
{
    [Fact]
    public void Accuracy_macro_f1_and_confusion_match_a_hand_count()
    {
        // truth:     0 0 0 1 1 2
        // predicted: 0 0 1 1 2 2
        // class 0: TP 2, FP 0, FN 1 -> F1 = 4/5; class 1: TP 1, FP 1, FN 1 -> 2/4; class 2: TP 1, FP 1, FN 0 -> 2/3.
        var m = ClassificationMetrics.Compute([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 2, 2], 3);
        Assert.Equal(4.0 / 6, m.Accuracy, 12);
        Assert.Equal((0.8 + 0.5 + 2.0 / 3) / 3, m.MacroF1, 12);
        Assert.Equal([2, 1, 0], m.Confusion[0]);
        Assert.Equal([0, 1, 1], m.Confusion[1]);
        Assert.Equal([0, 0, 1], m.Confusion[2]);
    }

    [Fact]
    public void Ranking_metrics_match_a_hand_computed_ranking()
    {
        // Query 0: its document (0) scores best -> rank 1. Query 1: documents 0, 2 beat its document 1 -> rank 3.
        // Query 2: a tie with document 0 counts against it -> rank 2. Seven documents, so query 3's rank 7 is outside the top 5.
        var scores = new float[4, 7]
        {
            { 0.9f, 0.1f, 0.2f, 0, 0, 0, 0 },
            { 0.8f, 0.5f, 0.6f, 0, 0, 0, 0 },
            { 0.7f, 0.1f, 0.7f, 0, 0, 0, 0 },
            { 0.9f, 0.8f, 0.7f, 0.1f, 0.6f, 0.5f, 0.4f },
        };
        int[] relevant = [0, 1, 2, 3];
        Assert.Equal([1, 3, 2, 7], RankingMetrics.Ranks(scores, relevant));
        var m = RankingMetrics.Compute(scores, relevant);
        Assert.Equal(0.25, m.RecallAt1, 12);
        Assert.Equal(0.75, m.RecallAt5, 12);
        Assert.Equal((1 + 1.0 / 3 + 0.5 + 1.0 / 7) / 4, m.Mrr, 12);
    }

    [Fact]
    public void The_validation_split_is_stratified_seeded_and_keeps_every_class_in_training()
    {
        var labels = Enumerable.Repeat("a", 10).Concat(Enumerable.Repeat("b", 5)).Append("single").ToArray();
        var data = new LabelledTexts("f", labels.Select((_, i) => $"t{i}").ToArray(), labels, Enumerable.Range(2, labels.Length).ToArray());
        var (train, validation) = data.StratifiedSplit(0.2, seed: 7);
        Assert.Equal(2, validation.Labels.Count(l => l == "a"));
        Assert.Equal(1, validation.Labels.Count(l => l == "b"));
        Assert.DoesNotContain("single", validation.Labels);
        Assert.Equal(data.Count, train.Count + validation.Count);
        Assert.Empty(train.Texts.Intersect(validation.Texts));
        Assert.Equal(validation.Texts, data.StratifiedSplit(0.2, seed: 7).Validation.Texts);
        var others = Enumerable.Range(1, 20).Select(s => string.Join(",", data.StratifiedSplit(0.2, s).Validation.Texts)).Distinct().Count();
        Assert.True(others > 1, "the seed chooses the validation examples");
    }
}
