namespace DoraSharp.MiniLM.OwnData;

/// <summary>(query, document) pairs from a user's file: each query's relevant document is the one on its row.</summary>
/// <param name="Source">The file.</param>
/// <param name="Queries">The queries.</param>
/// <param name="Documents">The documents, one per query.</param>
/// <param name="Lines">The line of each pair.</param>
public sealed record TextPairs(string Source, IReadOnlyList<string> Queries, IReadOnlyList<string> Documents, IReadOnlyList<int> Lines)
{
    /// <summary>Number of pairs.</summary>
    public int Count => Queries.Count;

    /// <summary>The pairs of <paramref name="table"/>.</summary>
    public static TextPairs From(TextTable table, string queryColumn, string documentColumn) =>
        new(table.Source, table.Texts(queryColumn, "--query-column"), table.Texts(documentColumn, "--document-column"), table.Lines);

    /// <summary>
    /// The distinct documents (first occurrence order) and, for each pair, the index of its document among them:
    /// a document that answers two queries is one candidate, not two competing copies.
    /// </summary>
    public (IReadOnlyList<string> Documents, int[] Relevant) Candidates()
    {
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var documents = new List<string>();
        var relevant = new int[Count];
        for (int i = 0; i < Count; i++)
        {
            if (!index.TryGetValue(Documents[i], out var j)) { j = documents.Count; index[Documents[i]] = j; documents.Add(Documents[i]); }
            relevant[i] = j;
        }
        return (documents, relevant);
    }

    /// <summary>A seeded random split (pairs are not classes: no stratification), both parts in file order.</summary>
    public (TextPairs Train, TextPairs Validation) Split(double fraction, int seed)
    {
        if (!(fraction > 0 && fraction < 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), $"--validation-split must be between 0 and 1 (exclusive), got {fraction}.");
        var order = Enumerable.Range(0, Count).ToArray();
        new Random(seed).Shuffle(order);
        int take = Math.Clamp((int)Math.Round(fraction * Count, MidpointRounding.AwayFromZero), 1, Count - 1);
        var validation = order.Take(take).ToHashSet();
        TextPairs Subset(Func<int, bool> keep)
        {
            var idx = Enumerable.Range(0, Count).Where(keep).ToArray();
            return new(Source, idx.Select(i => Queries[i]).ToArray(), idx.Select(i => Documents[i]).ToArray(), idx.Select(i => Lines[i]).ToArray());
        }
        return (Subset(i => !validation.Contains(i)), Subset(validation.Contains));
    }
}
