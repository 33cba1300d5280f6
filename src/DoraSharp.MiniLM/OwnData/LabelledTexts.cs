namespace DoraSharp.MiniLM.OwnData;

/// <summary>Texts with string labels, read from a user's file; <see cref="Lines"/> points back into it.</summary>
/// <param name="Source">The file, for messages.</param>
/// <param name="Texts">The texts, none empty.</param>
/// <param name="Labels">One label per text, any non-empty string.</param>
/// <param name="Lines">The line of the file where each example starts.</param>
public sealed record LabelledTexts(string Source, IReadOnlyList<string> Texts, IReadOnlyList<string> Labels, IReadOnlyList<int> Lines)
{
    /// <summary>Number of examples.</summary>
    public int Count => Texts.Count;

    /// <summary>
    /// The examples of <paramref name="table"/>: the text from <paramref name="textColumn"/> and the label from
    /// <paramref name="labelColumn"/> (each named by its option in errors). Labels are kept as written, surrounding
    /// spaces trimmed (" spam" and "spam" are one class in a hand-edited CSV).
    /// </summary>
    public static LabelledTexts From(TextTable table, string textColumn, string labelColumn, string textOption = "--text-column", string labelOption = "--label-column")
    {
        ArgumentNullException.ThrowIfNull(table);
        table.RequireColumn(textColumn, textOption);
        table.RequireColumn(labelColumn, labelOption);
        var texts = table.Texts(textColumn, textOption);
        var labels = new string[table.Rows.Count];
        for (int i = 0; i < labels.Length; i++)
        {
            if (!table.Rows[i].TryGetValue(labelColumn, out var label) || label.Trim().Length == 0)
                throw new DataFileException($"{table.Source}, line {table.Lines[i]}: column '{labelColumn}' is empty; every training row needs a label.");
            labels[i] = label.Trim();
        }
        return new LabelledTexts(table.Source, texts, labels, table.Lines);
    }

    /// <summary>The distinct labels, sorted ordinally (so the class indices do not depend on row order).</summary>
    public IReadOnlyList<string> DistinctLabels() => Labels.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

    /// <summary>The examples at <paramref name="indices"/>, in that order.</summary>
    public LabelledTexts Subset(IReadOnlyList<int> indices) => this with
    {
        Texts = indices.Select(i => Texts[i]).ToArray(),
        Labels = indices.Select(i => Labels[i]).ToArray(),
        Lines = indices.Select(i => Lines[i]).ToArray(),
    };

    /// <summary>
    /// A stratified split: from each class, round(<paramref name="fraction"/> × its count) examples go to
    /// validation (at least one when the class has two or more, never all of them), chosen by a shuffle seeded with
    /// <paramref name="seed"/>. Both parts keep file order, so the split is a pure function of (data, fraction, seed).
    /// </summary>
    public (LabelledTexts Train, LabelledTexts Validation) StratifiedSplit(double fraction, int seed)
    {
        if (!(fraction > 0 && fraction < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), $"--validation-split must be between 0 and 1 (exclusive), got {fraction}.");
        var random = new Random(seed);
        var validation = new HashSet<int>();
        foreach (var group in Enumerable.Range(0, Count).GroupBy(i => Labels[i], StringComparer.Ordinal).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var members = group.ToArray();
            if (members.Length < 2) continue;   // a class seen once stays in training: it cannot be learned otherwise
            int take = Math.Clamp((int)Math.Round(fraction * members.Length, MidpointRounding.AwayFromZero), 1, members.Length - 1);
            random.Shuffle(members);
            foreach (var i in members.Take(take)) validation.Add(i);
        }
        var all = Enumerable.Range(0, Count);
        return (Subset(all.Where(i => !validation.Contains(i)).ToArray()), Subset(all.Where(validation.Contains).ToArray()));
    }
}
