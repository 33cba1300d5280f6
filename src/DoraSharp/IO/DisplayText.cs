using System.Globalization;
using System.Text;

namespace DoraSharp.IO;

/// <summary>Renders untrusted strings (tensor names, header excerpts) for error messages.</summary>
internal static class DisplayText
{
    private const int MaxChars = 120;

    /// <summary>
    /// <paramref name="text"/> in single quotes, with invisible and line-breaking characters escaped as
    /// \uXXXX and anything past 120 characters cut: a hostile file must not be able to flood a log, forge
    /// extra lines, or reorder text (bidi overrides) through an exception message.
    /// </summary>
    public static string Quote(string text)
    {
        int shown = Math.Min(text.Length, MaxChars);
        if (shown < text.Length && char.IsHighSurrogate(text[shown - 1]))
        {
            shown--; // do not split a surrogate pair
        }
        var builder = new StringBuilder(shown + 8);
        builder.Append('\'');
        for (int i = 0; i < shown; i++)
        {
            char c = text[i];
            bool pairedSurrogate = char.IsSurrogatePair(text, i) || (i > 0 && char.IsSurrogatePair(text[i - 1], c));
            bool escape = !pairedSurrogate && CharUnicodeInfo.GetUnicodeCategory(c) is UnicodeCategory.Control
                or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.Surrogate;
            if (escape)
            {
                builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
            }
            else
            {
                builder.Append(c);
            }
        }
        builder.Append('\'');
        if (shown < text.Length)
        {
            builder.Append(CultureInfo.InvariantCulture, $" (cut; {text.Length} characters in all)");
        }
        return builder.ToString();
    }
}
