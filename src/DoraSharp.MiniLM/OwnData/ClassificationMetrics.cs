namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// Accuracy, macro-F1 and the confusion matrix of predicted against true class indices. Macro-F1 is the unweighted
/// mean over the classes of F1 = 2·TP / (2·TP + FP + FN), as scikit-learn's <c>f1_score(average="macro")</c>
/// over the labels given; a class with no true and no predicted example has F1 = 0 there (its
/// <c>zero_division</c> default) and the same here.
/// </summary>
public sealed record ClassificationMetrics
{
    /// <summary>Examples scored.</summary>
    public required int Count { get; init; }

    /// <summary>Correct predictions / <see cref="Count"/>.</summary>
    public required double Accuracy { get; init; }

    /// <summary>Mean of the per-class F1 scores.</summary>
    public required double MacroF1 { get; init; }

    /// <summary>F1 of each class, in class order.</summary>
    public required IReadOnlyList<double> F1 { get; init; }

    /// <summary><c>Confusion[true][predicted]</c> counts.</summary>
    public required IReadOnlyList<IReadOnlyList<int>> Confusion { get; init; }

    /// <summary>Scores <paramref name="predicted"/> against <paramref name="truth"/> (class indices in 0..<paramref name="classes"/>-1).</summary>
    public static ClassificationMetrics Compute(IReadOnlyList<int> truth, IReadOnlyList<int> predicted, int classes)
    {
        ArgumentNullException.ThrowIfNull(truth);
        ArgumentNullException.ThrowIfNull(predicted);
        if (truth.Count != predicted.Count) throw new ArgumentException($"ClassificationMetrics: {truth.Count} true labels but {predicted.Count} predictions.");
        if (truth.Count == 0) throw new ArgumentException("ClassificationMetrics: no examples to score.");
        var confusion = new int[classes][];
        for (int c = 0; c < classes; c++) confusion[c] = new int[classes];
        int correct = 0;
        for (int i = 0; i < truth.Count; i++)
        {
            confusion[truth[i]][predicted[i]]++;
            if (truth[i] == predicted[i]) correct++;
        }
        var f1 = new double[classes];
        for (int c = 0; c < classes; c++)
        {
            int tp = confusion[c][c];
            int fn = confusion[c].Sum() - tp;
            int fp = Enumerable.Range(0, classes).Sum(r => confusion[r][c]) - tp;
            f1[c] = 2 * tp + fp + fn == 0 ? 0 : 2.0 * tp / (2 * tp + fp + fn);
        }
        return new ClassificationMetrics
        {
            Count = truth.Count,
            Accuracy = (double)correct / truth.Count,
            MacroF1 = f1.Average(),
            F1 = f1,
            Confusion = confusion,
        };
    }
}
