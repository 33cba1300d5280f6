using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Numerics;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// The one place where every numeric option of every command is parsed and range-checked. A value that does not
/// parse, or lies outside the option's range, is a parse error, so `dora` prints one line naming the option, the
/// value and what is allowed, and exits with 2 before any work starts (<see cref="Cli.Run"/>). The range is also
/// appended to the option's help text, so help and check cannot disagree.
/// </summary>
/// <remarks>
/// The ranges are what the commands can run without a crash inside libtorch or an allocation that cannot succeed
/// (an Adam step size above float's range, a seed list of two billion entries), with room around every value a
/// real experiment uses; they are not advice. Numbers are read in the invariant culture (a dot for decimals);
/// NaN and infinities are refused; whole-number options refuse fractions and exponents ("1.5", "1e3").
/// </remarks>
internal static class OptionRules
{
    /// <summary>Largest seed: the range of a 32-bit unsigned integer, as NumPy's and most tools' seeds.</summary>
    public const long MaxSeed = uint.MaxValue;

    /// <summary>A whole-number option with a default and an inclusive range.</summary>
    public static Option<T> Whole<T>(string name, T defaultValue, T min, T max, string description) where T : struct, IBinaryInteger<T> =>
        new(name)
        {
            Description = $"{description} Allowed: {Range(min, max)}.",
            HelpName = "N",
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r => r.Tokens.Count == 0 ? defaultValue : ParseWhole(r, name, r.Tokens[^1].Value, min, max) ?? defaultValue,
        };

    /// <summary>A whole-number option without a default (null when not given).</summary>
    public static Option<T?> OptionalWhole<T>(string name, T min, T max, string description) where T : struct, IBinaryInteger<T> =>
        new(name)
        {
            Description = $"{description} Allowed: {Range(min, max)}.",
            HelpName = "N",
            CustomParser = r => r.Tokens.Count == 0 ? null : ParseWhole(r, name, r.Tokens[^1].Value, min, max),
        };

    /// <summary>A real-number option with a default; the minimum is exclusive when <paramref name="aboveMin"/> (e.g. a learning rate &gt; 0).</summary>
    public static Option<double> Real(string name, double defaultValue, double min, bool aboveMin, double max, string description) =>
        new(name)
        {
            Description = $"{description} Allowed: {RealRange(min, aboveMin, max)}.",
            HelpName = "X",
            DefaultValueFactory = _ => defaultValue,
            CustomParser = r => r.Tokens.Count == 0 ? defaultValue : ParseReal(r, name, r.Tokens[^1].Value, min, aboveMin, max) ?? defaultValue,
        };

    /// <summary>A real-number option without a default (null when not given).</summary>
    public static Option<double?> OptionalReal(string name, double min, bool aboveMin, double max, string description, string helpName = "X") =>
        new(name)
        {
            Description = $"{description} Allowed: {RealRange(min, aboveMin, max)}.",
            HelpName = helpName,
            CustomParser = r => r.Tokens.Count == 0 ? null : ParseReal(r, name, r.Tokens[^1].Value, min, aboveMin, max),
        };

    /// <summary>
    /// Parses a comma-separated list of whole numbers, each in [<paramref name="min"/>, <paramref name="max"/>], distinct,
    /// at most <paramref name="maxCount"/> of them. Reports the first problem on <paramref name="result"/> and returns null.
    /// </summary>
    public static T[]? ParseWholeList<T>(SymbolResult result, string name, string text, T min, T max, int maxCount, string example) where T : struct, IBinaryInteger<T>
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0)
        {
            result.AddError($"{name} needs at least one value, e.g. {example} (got '{text}').");
            return null;
        }
        if (parts.Length > maxCount)
        {
            result.AddError($"{name} takes at most {maxCount} values (got {parts.Length}: '{text}').");
            return null;
        }
        var values = new List<T>();
        foreach (var part in parts)
        {
            if (!T.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            {
                result.AddError($"{name}: '{part}' is not a whole number from {Show(min)} to {Show(max)}; give them separated by commas, e.g. {example} (got '{text}').");
                return null;
            }
            if (values.Contains(v))
            {
                result.AddError($"{name} lists {Show(v)} twice; each value may appear once (got '{text}').");
                return null;
            }
            values.Add(v);
        }
        return values.ToArray();
    }

    /// <summary>A text option that takes one of <paramref name="values"/>; the message names the option, the value and the choices.</summary>
    public static Option<string> Choice(string name, string defaultValue, string description, params string[] values) => new(name)
    {
        Description = description,
        HelpName = string.Join('|', values),
        DefaultValueFactory = _ => defaultValue,
        Validators =
        {
            r =>
            {
                if (r.Tokens is [.., var last] && !values.Contains(last.Value, StringComparer.Ordinal))
                    r.AddError($"{name} must be one of {string.Join(", ", values)} (got '{last.Value}').");
            },
        },
    };

    private static T? ParseWhole<T>(ArgumentResult result, string name, string token, T min, T max) where T : struct, IBinaryInteger<T>
    {
        if (T.TryParse(token, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max) return v;
        result.AddError($"{name} must be a whole number from {Show(min)} to {Show(max)} (got '{token}').");
        return null;
    }

    private static double? ParseReal(ArgumentResult result, string name, string token, double min, bool aboveMin, double max)
    {
        if (double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            && (aboveMin ? v > min : v >= min) && v <= max)
        {
            return v;
        }
        result.AddError($"{name} must be a number {RealRange(min, aboveMin, max)} (got '{token}').");
        return null;
    }

    private static string Range<T>(T min, T max) where T : struct, IBinaryInteger<T> => $"{Show(min)} to {Show(max)}";

    private static string RealRange(double min, bool aboveMin, double max) =>
        aboveMin ? $"> {Show(min)} and <= {Show(max)}" : $"from {Show(min)} to {Show(max)}";

    private static string Show<T>(T value) where T : IFormattable => value.ToString(null, CultureInfo.InvariantCulture);
}
