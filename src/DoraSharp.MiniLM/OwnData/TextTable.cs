namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// A data file read as rows of named text cells. <see cref="Lines"/> gives, for each row, the 1-based line of the
/// file where it starts, so later errors (an empty text, a missing label) can point at it.
/// </summary>
/// <param name="Source">The file's path as given (or <c>-</c> for standard input), used in messages.</param>
/// <param name="Columns">The header's column names (CSV/TSV), or every member name seen (JSON Lines), in order.</param>
/// <param name="Rows">One dictionary per record: column name → cell text. A JSON Lines record may lack some columns.</param>
/// <param name="Lines">The line where each record starts.</param>
public sealed record TextTable(string Source, IReadOnlyList<string> Columns, IReadOnlyList<IReadOnlyDictionary<string, string>> Rows, IReadOnlyList<int> Lines)
{
    /// <summary>Throws <see cref="DataFileException"/> naming <paramref name="option"/> and listing the columns found when <paramref name="column"/> is not one of them.</summary>
    public void RequireColumn(string column, string option)
    {
        if (!Columns.Contains(column, StringComparer.Ordinal))
            throw new DataFileException(
                $"{Source}: no column '{column}' ({option}); the columns found are {string.Join(", ", Columns.Select(c => $"'{c}'"))}.");
    }

    /// <summary>
    /// The non-empty text in <paramref name="column"/> of every row. An empty or missing cell is an error naming
    /// the line: training on "" would teach the model that an empty input has a class.
    /// </summary>
    public IReadOnlyList<string> Texts(string column, string option)
    {
        RequireColumn(column, option);
        var texts = new string[Rows.Count];
        for (int i = 0; i < Rows.Count; i++)
        {
            if (!Rows[i].TryGetValue(column, out var text) || string.IsNullOrWhiteSpace(text))
                throw new DataFileException($"{Source}, line {Lines[i]}: column '{column}' is empty; every row needs a text.");
            texts[i] = text;
        }
        return texts;
    }
}
