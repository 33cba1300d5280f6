namespace DoraSharp.MiniLM.OwnData;

/// <summary>The layouts <see cref="TextTableReader"/> reads.</summary>
public enum TextTableFormat
{
    /// <summary>Comma-separated values as RFC 4180 defines them, with a header row.</summary>
    Csv,

    /// <summary>Tab-separated values with a header row; quoting as in <see cref="Csv"/> (RFC 4180 with a tab separator).</summary>
    Tsv,

    /// <summary>JSON Lines: one JSON object per line; its string, number or boolean members are the columns.</summary>
    JsonLines,
}

/// <summary>Names and file extensions of <see cref="TextTableFormat"/>.</summary>
public static class TextTableFormats
{
    /// <summary>The names <c>--format</c> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["csv", "tsv", "jsonl"];

    /// <summary>The format named <paramref name="name"/> (<c>csv</c>, <c>tsv</c>, <c>jsonl</c>/<c>json</c>), or null.</summary>
    public static TextTableFormat? Parse(string name) => name.ToLowerInvariant() switch
    {
        "csv" => TextTableFormat.Csv,
        "tsv" or "tab" => TextTableFormat.Tsv,
        "jsonl" or "json" or "ndjson" => TextTableFormat.JsonLines,
        _ => null,
    };

    /// <summary>The format of <paramref name="path"/> by its extension (.csv, .tsv/.tab, .jsonl/.ndjson/.json), or null.</summary>
    public static TextTableFormat? FromExtension(string path) =>
        Path.GetExtension(path) is { Length: > 1 } ext ? Parse(ext[1..]) : null;
}
