using System.Globalization;
using System.Text;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face tokenizers' <c>BertPreTokenizer</c>: splits on whitespace (dropped) and makes every punctuation
/// character a word of its own. Punctuation is BERT's: all of ASCII's punctuation and symbols
/// (<c>$ + &lt; = &gt; ^ ` | ~</c> included) and every Unicode punctuation category.
/// </summary>
internal static class BertPreTokenizer
{
    /// <summary>The words of an already normalized <paramref name="text"/>.</summary>
    public static List<string> Split(string text)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        foreach (var r in text.EnumerateRunes())
        {
            if (BertNormalizer.IsWhitespace(r))
            {
                Flush(current, words);
            }
            else if (IsPunctuation(r))
            {
                Flush(current, words);
                words.Add(r.ToString());
            }
            else
            {
                current.Append(r.ToString());
            }
        }
        Flush(current, words);
        return words;
    }

    /// <summary>ASCII punctuation and symbols, or a Unicode punctuation category.</summary>
    public static bool IsPunctuation(Rune r)
    {
        int cp = r.Value;
        if (cp is >= 33 and <= 47 or >= 58 and <= 64 or >= 91 and <= 96 or >= 123 and <= 126) return true;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation
            or UnicodeCategory.OpenPunctuation or UnicodeCategory.ClosePunctuation
            or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    private static void Flush(StringBuilder current, List<string> words)
    {
        if (current.Length == 0) return;
        words.Add(current.ToString());
        current.Clear();
    }
}
