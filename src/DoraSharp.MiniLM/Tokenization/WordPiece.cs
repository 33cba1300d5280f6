using System.Text;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face's WordPiece model: greedy longest-match-first from the start of each word, continuation pieces
/// prefixed with <c>##</c>; a word with a piece not in the vocabulary, or longer than
/// <see cref="MaxInputCharsPerWord"/> characters, becomes one [UNK].
/// </summary>
internal sealed class WordPiece
{
    /// <summary>HF's <c>max_input_chars_per_word</c> for BERT.</summary>
    public const int MaxInputCharsPerWord = 100;

    private const string ContinuingPrefix = "##";
    private readonly Dictionary<string, int> vocabulary;
    private readonly int unknownId;

    public WordPiece(Dictionary<string, int> vocabulary, int unknownId)
    {
        this.vocabulary = vocabulary;
        this.unknownId = unknownId;
    }

    /// <summary>Appends the piece ids of <paramref name="word"/> to <paramref name="ids"/>.</summary>
    public void Encode(string word, List<int> ids)
    {
        // Counted in code points, as tokenizers' chars().count().
        int chars = 0;
        foreach (var _ in word.EnumerateRunes()) chars++;
        if (chars > MaxInputCharsPerWord)
        {
            ids.Add(unknownId);
            return;
        }

        int mark = ids.Count;
        int start = 0;
        var candidate = new StringBuilder();
        while (start < word.Length)
        {
            int end = word.Length;
            int found = -1;
            while (start < end)
            {
                candidate.Clear();
                if (start > 0) candidate.Append(ContinuingPrefix);
                candidate.Append(word, start, end - start);
                if (vocabulary.TryGetValue(candidate.ToString(), out found)) break;
                found = -1;
                // Step back one code point, never into the middle of a surrogate pair.
                end -= end >= 2 && char.IsLowSurrogate(word[end - 1]) && char.IsHighSurrogate(word[end - 2]) ? 2 : 1;
            }
            if (found < 0)
            {
                ids.RemoveRange(mark, ids.Count - mark);
                ids.Add(unknownId);
                return;
            }
            ids.Add(found);
            start = end;
        }
    }
}
