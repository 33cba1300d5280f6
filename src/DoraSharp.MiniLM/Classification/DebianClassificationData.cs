namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// The Debian-descriptions task as the experiment uses it: a class-balanced training subset drawn with a fixed
/// seed, and the test split (whole, or a balanced subset), both tokenized.
/// </summary>
public sealed class DebianClassificationData
{
    private DebianClassificationData(IReadOnlyList<string> labels, EncodedExamples train, EncodedExamples test)
    {
        Labels = labels;
        Train = train;
        Test = test;
    }

    /// <summary>Class names; an example's label is an index into this list.</summary>
    public IReadOnlyList<string> Labels { get; }

    /// <summary>The training subset, grouped by class (the training loop shuffles it).</summary>
    public EncodedExamples Train { get; }

    /// <summary>The test examples.</summary>
    public EncodedExamples Test { get; }

    /// <summary>
    /// Draws <paramref name="trainPerClass"/> training examples per class (and <paramref name="testPerClass"/> test
    /// examples per class, or all when null) with a <see cref="Random"/> seeded by <paramref name="subsetSeed"/>,
    /// then tokenizes them with <paramref name="tokenizer"/>. Throws when a class has too few examples.
    /// </summary>
    public static DebianClassificationData Create(
        DebianDescriptions dataset, MiniLmTokenizer tokenizer, int trainPerClass, int? testPerClass, int subsetSeed)
    {
        ArgumentNullException.ThrowIfNull(dataset);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var random = new Random(subsetSeed);
        EncodedExamples Take(IReadOnlyList<DebianDescription> split, int? perClass, string splitName)
        {
            var texts = new List<string>();
            var labels = new List<int>();
            foreach (var label in dataset.Labels)
            {
                var pool = split.Where(d => d.Label == label).ToArray();
                int n = perClass ?? pool.Length;
                if (n > pool.Length)
                    throw new ArgumentException(
                        $"DebianClassificationData: {n} {splitName} examples per class asked for, but '{label}' has {pool.Length}.");
                if (perClass is not null) random.Shuffle(pool);
                foreach (var d in pool.Take(n))
                {
                    texts.Add(d.Text);
                    labels.Add(dataset.LabelIndex(label));
                }
            }
            return new EncodedExamples(tokenizer, texts, labels);
        }
        var train = Take(dataset.Train, trainPerClass, "train");
        var test = Take(dataset.Test, testPerClass, "test");
        return new DebianClassificationData(dataset.Labels, train, test);
    }
}
