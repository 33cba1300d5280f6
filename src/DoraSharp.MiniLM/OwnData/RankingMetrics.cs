namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// Retrieval quality of a score matrix where query i's one relevant document is <c>relevant[i]</c>:
/// recall@k = share of queries whose relevant document is among the k best scored; MRR = mean of 1 / rank
/// (rank 1 = best). Ties are broken against the relevant document (it ranks after every document scoring the same),
/// so a constant scorer does not look good.
/// </summary>
public sealed record RankingMetrics(int Queries, int Documents, double RecallAt1, double RecallAt5, double Mrr)
{
    /// <summary>The 1-based rank of the relevant document of each query.</summary>
    public static int[] Ranks(float[,] scores, IReadOnlyList<int> relevant)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(relevant);
        int q = scores.GetLength(0), d = scores.GetLength(1);
        if (relevant.Count != q) throw new ArgumentException($"RankingMetrics: {q} queries but {relevant.Count} relevant documents.");
        var ranks = new int[q];
        for (int i = 0; i < q; i++)
        {
            float own = scores[i, relevant[i]];
            int better = 0;
            for (int j = 0; j < d; j++)
                if (j != relevant[i] && scores[i, j] >= own) better++;
            ranks[i] = better + 1;
        }
        return ranks;
    }

    /// <summary>The metrics of <paramref name="scores"/> <c>(queries, documents)</c>.</summary>
    public static RankingMetrics Compute(float[,] scores, IReadOnlyList<int> relevant)
    {
        var ranks = Ranks(scores, relevant);
        if (ranks.Length == 0) throw new ArgumentException("RankingMetrics: no queries.");
        return new RankingMetrics(ranks.Length, scores.GetLength(1),
            ranks.Count(r => r <= 1) / (double)ranks.Length,
            ranks.Count(r => r <= 5) / (double)ranks.Length,
            ranks.Average(r => 1.0 / r));
    }
}
