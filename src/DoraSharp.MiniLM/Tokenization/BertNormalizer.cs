using System.Globalization;
using System.Text;

namespace DoraSharp.MiniLM;

/// <summary>
/// Hugging Face tokenizers' <c>BertNormalizer</c> with all-MiniLM-L6-v2's settings (clean_text, handle_chinese_chars,
/// strip_accents following lowercase, lowercase), step for step in its order: drop NUL, U+FFFD and control
/// characters (tab, newline and carriage return excepted) and turn whitespace into spaces; surround CJK
/// ideographs with spaces; decompose canonically and drop non-spacing marks; lower-case.
/// </summary>
internal static class BertNormalizer
{
    /// <summary>Normalizes <paramref name="text"/>.</summary>
    public static string Normalize(string text)
    {
        var runes = new List<Rune>(text.Length + 8);
        foreach (var r in text.EnumerateRunes())
        {
            if (r.Value == 0 || r.Value == 0xFFFD || IsControl(r)) continue;
            if (IsWhitespace(r)) { runes.Add(new Rune(' ')); continue; }
            if (IsChineseChar(r.Value))
            {
                runes.Add(new Rune(' '));
                runes.Add(r);
                runes.Add(new Rune(' '));
                continue;
            }
            runes.Add(r);
        }

        var decomposed = new List<Rune>(runes.Count + 8);
        foreach (var r in runes) CanonicalDecomposition.Append(r, decomposed);

        var sb = new StringBuilder(decomposed.Count);
        foreach (var r in decomposed)
        {
            if (Rune.GetUnicodeCategory(r) == UnicodeCategory.NonSpacingMark) continue;
            sb.Append(Rune.ToLowerInvariant(r).ToString());
        }
        return sb.ToString();
    }

    /// <summary>Tab, newline and carriage return, then whatever Unicode calls white space.</summary>
    public static bool IsWhitespace(Rune r) => r.Value is '\t' or '\n' or '\r' || Rune.IsWhiteSpace(r);

    // tokenizers' is_control: the "Other" categories, except the three whitespace controls.
    private static bool IsControl(Rune r)
    {
        if (r.Value is '\t' or '\n' or '\r') return false;
        return Rune.GetUnicodeCategory(r) is UnicodeCategory.Control or UnicodeCategory.Format
            or UnicodeCategory.Surrogate or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned;
    }

    // BERT's "Chinese character" blocks: CJK Unified Ideographs and extensions, compatibility ideographs.
    // Kana and Hangul are not in them, as in the original BERT.
    private static bool IsChineseChar(int cp) =>
        cp is >= 0x4E00 and <= 0x9FFF
            or >= 0x3400 and <= 0x4DBF
            or >= 0x20000 and <= 0x2A6DF
            or >= 0x2A700 and <= 0x2B73F
            or >= 0x2B740 and <= 0x2B81F
            or >= 0x2B820 and <= 0x2CEAF
            or >= 0xF900 and <= 0xFAFF
            or >= 0x2F800 and <= 0x2FA1F;
}
