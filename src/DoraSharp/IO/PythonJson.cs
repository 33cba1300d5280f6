using System.Globalization;
using System.Text;

namespace DoraSharp.IO;

/// <summary>
/// Writes JSON text exactly as Python's <c>json.dumps(value, indent=2, sort_keys=True)</c> does, which is how
/// PEFT's <c>PeftConfigMixin.save_pretrained</c> writes <c>adapter_config.json</c>. Matching it byte for byte
/// means a config saved here and one saved by PEFT for the same options are the same file.
/// </summary>
/// <remarks>
/// Python's rules, restated: keys sorted by code point; two-space indent, one item per line with
/// <c>","</c> at the end of each line but the last and <c>": "</c> after keys; empty containers as <c>{}</c> and <c>[]</c>; no newline at
/// the end; <c>ensure_ascii</c>, so every character outside printable ASCII (space to '~') is escaped, as
/// <c>\n</c>-style short escapes where JSON has one and lower-case <c>\uXXXX</c> otherwise (UTF-16 units, so a
/// character beyond U+FFFF becomes two escapes); floats as <c>repr(float)</c>.
/// Values are null, bool, int, long, double, string, <see cref="IReadOnlyList{T}"/> of values and
/// <see cref="IReadOnlyDictionary{TKey, TValue}"/> of string to value.
/// </remarks>
internal static class PythonJson
{
    /// <summary>The text of <paramref name="value"/> as <c>json.dumps(value, indent=2, sort_keys=True)</c>.</summary>
    /// <exception cref="ArgumentException">A value of an unsupported type, or a NaN or infinite double.</exception>
    public static string Dumps(object? value)
    {
        var builder = new StringBuilder();
        Write(builder, value, 0);
        return builder.ToString();
    }

    private static void Write(StringBuilder builder, object? value, int level)
    {
        switch (value)
        {
            case null: builder.Append("null"); break;
            case bool b: builder.Append(b ? "true" : "false"); break;
            case int i: builder.Append(i.ToString(CultureInfo.InvariantCulture)); break;
            case long l: builder.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d: builder.Append(FloatRepr(d)); break;
            case string s: WriteString(builder, s); break;
            case IReadOnlyDictionary<string, object?> map: WriteObject(builder, map, level); break;
            case IReadOnlyList<object?> list: WriteArray(builder, list, level); break;
            default: throw new ArgumentException($"PythonJson cannot write a {value.GetType().Name}.", nameof(value));
        }
    }

    private static void WriteObject(StringBuilder builder, IReadOnlyDictionary<string, object?> map, int level)
    {
        if (map.Count == 0)
        {
            builder.Append("{}");
            return;
        }
        // sort_keys=True sorts str keys by code point; ordinal UTF-16 order differs from it only for characters
        // beyond U+FFFF against U+E000..U+FFFF, so compare by code points to be exact.
        var keys = map.Keys.ToList();
        keys.Sort(CompareCodePoints);
        builder.Append('{');
        for (int i = 0; i < keys.Count; i++)
        {
            builder.Append(i == 0 ? "\n" : ",\n").Append(' ', 2 * (level + 1));
            WriteString(builder, keys[i]);
            builder.Append(": ");
            Write(builder, map[keys[i]], level + 1);
        }
        builder.Append('\n').Append(' ', 2 * level).Append('}');
    }

    private static void WriteArray(StringBuilder builder, IReadOnlyList<object?> list, int level)
    {
        if (list.Count == 0)
        {
            builder.Append("[]");
            return;
        }
        builder.Append('[');
        for (int i = 0; i < list.Count; i++)
        {
            builder.Append(i == 0 ? "\n" : ",\n").Append(' ', 2 * (level + 1));
            Write(builder, list[i], level + 1);
        }
        builder.Append('\n').Append(' ', 2 * level).Append(']');
    }

    private static void WriteString(StringBuilder builder, string text)
    {
        builder.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                default:
                    if (c >= ' ' && c <= '~') builder.Append(c);
                    else builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    break;
            }
        }
        builder.Append('"');
    }

    /// <summary>
    /// Python's <c>repr(float)</c>: the shortest digits that read back to the same double, written positionally
    /// when the decimal exponent is in [-4, 16) (with ".0" added to whole numbers), else as <c>d.ddde±XX</c>.
    /// </summary>
    public static string FloatRepr(double value)
    {
        if (!double.IsFinite(value))
        {
            // Python would write NaN/Infinity, which is not JSON; no field of a LoRA config can hold one.
            throw new ArgumentException($"{value} cannot be written as a JSON number.", nameof(value));
        }
        // .NET's "R" also gives the shortest round-trip digits, in its own layout ("1E-05", "1E+16", "0.0001");
        // take the digits and the decimal point position from it and lay them out as Python does.
        string text = value.ToString("R", CultureInfo.InvariantCulture);
        bool negative = text.StartsWith('-');
        if (negative) text = text[1..];
        int exponent = 0;
        int e = text.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            exponent = int.Parse(text[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            text = text[..e];
        }
        int dot = text.IndexOf('.');
        string whole = dot < 0 ? text : text[..dot];
        string digits = whole + (dot < 0 ? "" : text[(dot + 1)..]);
        int point = whole.Length + exponent; // the value is 0.<digits> × 10^point
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits[leadingZeros..].TrimEnd('0');
        point -= leadingZeros;
        string sign = negative ? "-" : "";
        if (digits.Length == 0) return sign + "0.0";

        if (point <= -4 || point > 16)
        {
            string mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
            int power = point - 1;
            return $"{sign}{mantissa}e{(power < 0 ? '-' : '+')}{Math.Abs(power).ToString("00", CultureInfo.InvariantCulture)}";
        }
        if (point <= 0) return $"{sign}0.{new string('0', -point)}{digits}";
        if (point >= digits.Length) return $"{sign}{digits}{new string('0', point - digits.Length)}.0";
        return $"{sign}{digits[..point]}.{digits[point..]}";
    }

    private static int CompareCodePoints(string a, string b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            int x = CodePointAt(a, i, out int xLength);
            int y = CodePointAt(b, j, out int yLength);
            if (x != y) return x.CompareTo(y);
            i += xLength;
            j += yLength;
        }
        return (a.Length - i).CompareTo(b.Length - j);
    }

    private static int CodePointAt(string text, int index, out int length)
    {
        if (char.IsSurrogatePair(text, index))
        {
            length = 2;
            return char.ConvertToUtf32(text[index], text[index + 1]);
        }
        length = 1;
        return text[index]; // a lone surrogate compares as its unit, as in Python's str
    }
}
