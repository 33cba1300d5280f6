using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// Reads a user's data file (CSV, TSV or JSON Lines, UTF-8 with or without a byte-order mark) into a
/// <see cref="TextTable"/>, strictly: every problem is a <see cref="DataFileException"/> naming the file, the line
/// and the column (or the byte offset of bytes that are not UTF-8), never a silently skipped or mangled row.
/// </summary>
/// <remarks>
/// The CSV parser is written here rather than taken from Sep 0.18.0, Sylvan.Data.Csv 1.4.4 or CsvHelper because
/// what this reader must report is not what they are built to report: a text file of labelled examples is small
/// (read whole), and the errors users need are (1) the byte offset of invalid UTF-8, which needs the bytes decoded
/// by us before any CSV parsing (the packages decode through a <see cref="TextReader"/> that replaces bad bytes with
/// U+FFFD unless configured otherwise, and then no longer know the offset); (2) the physical line of a malformed
/// row, counting the line breaks inside quoted fields (Sylvan reports the record number, Sep accepts stray quotes
/// in unquoted fields without complaint, CsvHelper's BadDataFound reports the raw record text). RFC 4180 is small:
/// records end at CRLF (LF and lone CR are accepted too); a field containing the separator, a quote or a line break
/// is quoted and its quotes doubled; a quote anywhere else is an error.
/// </remarks>
public static class TextTableReader
{
    private static readonly byte[] Bom = [0xEF, 0xBB, 0xBF];

    /// <summary>
    /// Reads <paramref name="path"/>; <paramref name="format"/> null means "by the file's extension"
    /// (.csv, .tsv, .jsonl), and a file with another extension is refused naming --format.
    /// </summary>
    public static TextTable Read(string path, TextTableFormat? format = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var chosen = format ?? TextTableFormats.FromExtension(path)
            ?? throw new DataFileException($"{path}: cannot tell the format from the extension '{Path.GetExtension(path)}'; name the file .csv, .tsv or .jsonl, or give --format {string.Join('|', TextTableFormats.Names)}.");
        if (Directory.Exists(path)) throw new DataFileException($"{path}: is a folder; expected a data file.");
        if (!File.Exists(path)) throw new DataFileException($"{path}: no such file.");
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFileException($"{path}: cannot read the file ({e.Message.TrimEnd('.')}).");
        }
        return Parse(bytes, chosen, path);
    }

    /// <summary>Parses <paramref name="bytes"/> (a whole file) as <paramref name="format"/>; <paramref name="source"/> names it in errors.</summary>
    public static TextTable Parse(ReadOnlySpan<byte> bytes, TextTableFormat format, string source)
    {
        var text = Decode(bytes, source);
        if (text.Length == 0 || string.IsNullOrWhiteSpace(text)) throw new DataFileException($"{source}: the file is empty.");
        return format switch
        {
            TextTableFormat.Csv => ParseDelimited(text, ',', source),
            TextTableFormat.Tsv => ParseDelimited(text, '\t', source),
            _ => ParseJsonLines(text, source),
        };
    }

    /// <summary>
    /// Strict UTF-8 decoding (one leading byte-order mark dropped). Invalid bytes are an error giving their byte
    /// offset in the file and the line they are on: replacing them with U+FFFD would train on text the user never wrote.
    /// </summary>
    public static string Decode(ReadOnlySpan<byte> bytes, string source)
    {
        int start = bytes.StartsWith(Bom) ? Bom.Length : 0;
        var body = bytes[start..];
        var chars = ArrayPool<char>.Shared.Rent(Math.Max(body.Length, 1));
        try
        {
            var status = Utf8.ToUtf16(body, chars, out int read, out int written, replaceInvalidSequences: false);
            if (status != OperationStatus.Done)
            {
                long offset = start + read;
                int line = 1 + bytes[..(int)offset].Count((byte)'\n');
                throw new DataFileException(
                    $"{source}, line {line}: invalid UTF-8 at byte offset {offset} (0x{bytes[(int)offset]:X2}); save the file as UTF-8.");
            }
            return new string(chars, 0, written);
        }
        finally
        {
            ArrayPool<char>.Shared.Return(chars);
        }
    }

    private static TextTable ParseDelimited(string text, char separator, string source)
    {
        var records = new List<(List<string> Fields, int Line)>();
        int pos = 0, line = 1;
        while (pos < text.Length)
        {
            int recordLine = line;
            // A line with nothing on it is not a record (files often end with one); a line with only spaces is.
            if (text[pos] is '\n' or '\r') { pos = SkipBreak(text, pos); line++; continue; }
            var fields = new List<string>();
            var sb = new StringBuilder();
            while (true)
            {
                int column = fields.Count + 1;
                sb.Clear();
                if (pos < text.Length && text[pos] == '"')
                {
                    int openLine = line;
                    pos++;
                    while (true)
                    {
                        if (pos >= text.Length)
                            throw new DataFileException($"{source}, line {openLine}, column {column}: the quoted field opened here is never closed (a missing '\"').");
                        char c = text[pos];
                        if (c == '"')
                        {
                            if (pos + 1 < text.Length && text[pos + 1] == '"') { sb.Append('"'); pos += 2; continue; }
                            pos++;
                            break;
                        }
                        if (c == '\n' || (c == '\r' && (pos + 1 >= text.Length || text[pos + 1] != '\n'))) line++;
                        sb.Append(c);
                        pos++;
                    }
                    if (pos < text.Length && text[pos] != separator && text[pos] is not ('\n' or '\r'))
                        throw new DataFileException($"{source}, line {line}, column {column}: text after the closing quote of a quoted field (RFC 4180: a quote inside a quoted field is written twice, \"\").");
                }
                else
                {
                    while (pos < text.Length && text[pos] != separator && text[pos] is not ('\n' or '\r'))
                    {
                        if (text[pos] == '"')
                            throw new DataFileException($"{source}, line {line}, column {column}: a quote inside an unquoted field (RFC 4180: quote the whole field and write the quote twice, \"\").");
                        sb.Append(text[pos++]);
                    }
                }
                fields.Add(sb.ToString());
                if (pos < text.Length && text[pos] == separator) { pos++; continue; }
                break;
            }
            if (pos < text.Length) { pos = SkipBreak(text, pos); line++; }
            records.Add((fields, recordLine));
        }
        if (records.Count == 0) throw new DataFileException($"{source}: the file is empty.");

        var (header, headerLine) = records[0];
        var columns = header.Select(h => h.Trim()).ToArray();
        for (int i = 0; i < columns.Length; i++)
        {
            if (columns[i].Length == 0)
                throw new DataFileException($"{source}, line {headerLine}, column {i + 1}: the header has an empty column name; the first row must name every column.");
            int first = Array.IndexOf(columns, columns[i]);
            if (first < i)
                throw new DataFileException($"{source}, line {headerLine}: column name '{columns[i]}' appears twice (columns {first + 1} and {i + 1}).");
        }
        if (records.Count == 1) throw new DataFileException($"{source}: the file has a header ({string.Join(", ", columns)}) but no rows.");
        var rows = new List<IReadOnlyDictionary<string, string>>(records.Count - 1);
        var lines = new List<int>(records.Count - 1);
        foreach (var (fields, recordLine) in records.Skip(1))
        {
            if (fields.Count != columns.Length)
                throw new DataFileException(
                    $"{source}, line {recordLine}: {fields.Count} field(s) but the header has {columns.Length} ({string.Join(", ", columns)}); " +
                    $"a field containing '{(separator == '\t' ? "\\t" : separator)}', a quote or a line break must be quoted.");
            var row = new Dictionary<string, string>(columns.Length, StringComparer.Ordinal);
            for (int i = 0; i < columns.Length; i++) row[columns[i]] = fields[i];
            rows.Add(row);
            lines.Add(recordLine);
        }
        return new TextTable(source, columns, rows, lines);
    }

    private static int SkipBreak(string text, int pos) =>
        text[pos] == '\r' && pos + 1 < text.Length && text[pos + 1] == '\n' ? pos + 2 : pos + 1;

    private static TextTable ParseJsonLines(string text, string source)
    {
        var columns = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var rows = new List<IReadOnlyDictionary<string, string>>();
        var lines = new List<int>();
        var all = text.Split('\n');
        for (int i = 0; i < all.Length; i++)
        {
            var content = all[i].TrimEnd('\r');
            if (string.IsNullOrWhiteSpace(content)) continue;
            JsonDocument document;
            try { document = JsonDocument.Parse(content); }
            catch (JsonException e)
            {
                throw new DataFileException($"{source}, line {i + 1}, column {(e.BytePositionInLine ?? 0) + 1}: not valid JSON ({e.Message.Split(" Path:")[0].TrimEnd('.')}); JSON Lines needs one object per line.");
            }
            using (document)
            {
                if (document.RootElement.ValueKind != JsonValueKind.Object)
                    throw new DataFileException($"{source}, line {i + 1}: a JSON {document.RootElement.ValueKind.ToString().ToLowerInvariant()}, expected an object such as {{\"text\": \"...\", \"label\": \"...\"}}.");
                var row = new Dictionary<string, string>(StringComparer.Ordinal);
                foreach (var member in document.RootElement.EnumerateObject())
                {
                    string? value = member.Value.ValueKind switch
                    {
                        JsonValueKind.String => member.Value.GetString(),
                        // Labels are strings; 3 and "3" are the same class, as they are in a CSV file.
                        JsonValueKind.Number => member.Value.GetRawText(),
                        JsonValueKind.True => "true",
                        JsonValueKind.False => "false",
                        JsonValueKind.Null => null,
                        _ => throw new DataFileException($"{source}, line {i + 1}: member '{member.Name}' is a JSON {member.Value.ValueKind.ToString().ToLowerInvariant()}; expected a string, number or boolean."),
                    };
                    if (value is null) continue;
                    if (!row.TryAdd(member.Name, value))
                        throw new DataFileException($"{source}, line {i + 1}: member '{member.Name}' appears twice.");
                    if (seen.Add(member.Name)) columns.Add(member.Name);
                }
                rows.Add(row);
                lines.Add(i + 1);
            }
        }
        if (rows.Count == 0) throw new DataFileException($"{source}: the file is empty.");
        return new TextTable(source, columns, rows, lines);
    }
}
