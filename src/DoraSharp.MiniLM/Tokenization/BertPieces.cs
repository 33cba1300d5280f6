namespace DoraSharp.MiniLM;

/// <summary>
/// The steps of Hugging Face's <c>BertWordPiece</c> pipeline around the word-piece model, shared by
/// <c>MiniLmTokenizer</c> (training, TorchSharp) and DoraSharp.Onnx's tokenizer (deployment, which compiles this
/// file too), so that a model is served with exactly the ids it was trained and checked with: special tokens matched
/// verbatim in the raw text, the rest normalised (<see cref="BertNormalizer"/>) and split into words
/// (<see cref="BertPreTokenizer"/>); [CLS] pieces [SEP] with truncation; padding to the longest text.
/// </summary>
internal static class BertPieces
{
    /// <summary>
    /// The piece ids of <paramref name="text"/> without [CLS], [SEP] or truncation: each special token of
    /// <paramref name="special"/> (token → id) found in the text is its id; every other stretch is normalised, split,
    /// and each word handed to <paramref name="appendWord"/>, which appends its word-piece ids.
    /// </summary>
    public static List<int> Encode(string text, IReadOnlyDictionary<string, int> special, Action<string, List<int>> appendWord)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>();
        int start = 0;
        while (start <= text.Length)
        {
            var (at, token) = NextSpecial(text, start, special.Keys);
            int end = at < 0 ? text.Length : at;
            foreach (var word in BertPreTokenizer.Split(BertNormalizer.Normalize(text[start..end])))
                appendWord(word, ids);
            if (at < 0) break;
            ids.Add(special[token!]);
            start = at + token!.Length;
        }
        return ids;
    }

    /// <summary>
    /// [CLS], the first <paramref name="maxLength"/> - 2 of <paramref name="pieces"/>, [SEP]. Truncation cuts between
    /// word pieces, as HF's does, not between words.
    /// </summary>
    public static int[] Frame(List<int> pieces, int clsId, int sepId, int maxLength)
    {
        int kept = Math.Min(pieces.Count, maxLength - 2);
        var ids = new int[kept + 2];
        ids[0] = clsId;
        pieces.CopyTo(0, ids, 1, kept);
        ids[^1] = sepId;
        return ids;
    }

    /// <summary>
    /// <paramref name="rows"/> padded with <paramref name="padId"/> to the longest: row-major <c>(B, T)</c> input ids,
    /// attention mask (1 on real tokens) and token type ids (all 0, single sentences).
    /// </summary>
    public static (long[] InputIds, long[] AttentionMask, long[] TokenTypeIds, int Length) Pad(int[][] rows, int padId)
    {
        int b = rows.Length, t = rows.Length == 0 ? 0 : rows.Max(r => r.Length);
        var ids = new long[b * t];
        var mask = new long[b * t];
        Array.Fill(ids, padId);
        for (int r = 0; r < b; r++)
            for (int j = 0; j < rows[r].Length; j++)
            {
                ids[r * t + j] = rows[r][j];
                mask[r * t + j] = 1;
            }
        return (ids, mask, new long[b * t], t);
    }

    // The leftmost special token at or after start (the longest if two start together), as HF's added-token split.
    private static (int At, string? Token) NextSpecial(string text, int start, IEnumerable<string> specialTokens)
    {
        int best = -1;
        string? token = null;
        foreach (var s in specialTokens)
        {
            int at = text.IndexOf(s, start, StringComparison.Ordinal);
            if (at >= 0 && (best < 0 || at < best || (at == best && s.Length > token!.Length)))
            {
                best = at;
                token = s;
            }
        }
        return (best, token);
    }
}
