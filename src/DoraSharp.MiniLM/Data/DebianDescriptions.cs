using System.Text.Json;

namespace DoraSharp.MiniLM;

/// <summary>
/// The Debian package descriptions snapshot (<c>data/debian-descriptions/descriptions.jsonl</c>): long descriptions
/// from Debian 12 labelled with their package's section, split by source package. See that folder's README.md.
/// </summary>
public sealed class DebianDescriptions
{
    /// <summary>The snapshot's file name.</summary>
    public const string FileName = "descriptions.jsonl";

    /// <summary>The snapshot's folder, relative to the repository root.</summary>
    public static readonly string RepositoryFolder = Path.Combine("data", "debian-descriptions");

    // Exactly these fields: in particular no package or source name, which would give the section away.
    private static readonly string[] Fields = ["id", "split", "label", "text"];

    private DebianDescriptions(IReadOnlyList<DebianDescription> all)
    {
        All = all;
        Train = all.Where(d => d.Split == DatasetSplit.Train).ToArray();
        Test = all.Where(d => d.Split == DatasetSplit.Test).ToArray();
        labels = all.Select(d => d.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
    }

    /// <summary>Every example in file order (train first, then test; each by label, then id).</summary>
    public IReadOnlyList<DebianDescription> All { get; }

    /// <summary>The training examples.</summary>
    public IReadOnlyList<DebianDescription> Train { get; }

    /// <summary>The test examples.</summary>
    public IReadOnlyList<DebianDescription> Test { get; }

    /// <summary>The sections, in ordinal order; a label's index here is its class index.</summary>
    public IReadOnlyList<string> Labels => labels;

    private readonly string[] labels;

    /// <summary>The class index of <paramref name="label"/>.</summary>
    public int LabelIndex(string label)
    {
        int i = Array.IndexOf(labels, label);
        return i >= 0 ? i : throw new ArgumentException($"DebianDescriptions: unknown label '{label}'; labels are {string.Join(", ", Labels)}.");
    }

    /// <summary>
    /// Reads and validates a snapshot: every line a JSON object with exactly the fields id, split, label and text;
    /// ids of 16 hex digits and unique; split train or test; no text twice; every label in both splits.
    /// Errors name the file and line.
    /// </summary>
    public static DebianDescriptions Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new FileNotFoundException($"DebianDescriptions: no snapshot at '{path}'.", path);
        var items = new List<DebianDescription>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var texts = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            string Where() => $"DebianDescriptions: {Path.GetFileName(path)} line {lineNumber}";
            if (line.Length == 0) throw new InvalidDataException($"{Where()} is empty; expected one JSON object per line.");
            JsonDocument doc;
            try { doc = JsonDocument.Parse(line); }
            catch (JsonException e) { throw new InvalidDataException($"{Where()} is not JSON: {e.Message}", e); }
            using (doc)
            {
                var root = doc.RootElement;
                if (root.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{Where()} is not a JSON object.");
                var names = root.EnumerateObject().Select(p => p.Name).ToArray();
                var unexpected = names.Except(Fields).ToArray();
                if (unexpected.Length > 0 || names.Length != Fields.Length || Fields.Except(names).Any())
                    throw new InvalidDataException(
                        $"{Where()} has fields [{string.Join(", ", names)}]; expected exactly [{string.Join(", ", Fields)}]" +
                        (unexpected.Length > 0 ? $" (unexpected: {string.Join(", ", unexpected)})." : "."));
                string Field(string name) =>
                    root.GetProperty(name) is { ValueKind: JsonValueKind.String } v && v.GetString() is { Length: > 0 } s
                        ? s
                        : throw new InvalidDataException($"{Where()}: '{name}' must be a non-empty string.");
                var id = Field("id");
                if (id.Length != 16 || !id.All(char.IsAsciiHexDigitLower))
                    throw new InvalidDataException($"{Where()}: id '{id}' must be 16 lower-case hex digits.");
                if (!ids.Add(id)) throw new InvalidDataException($"{Where()}: id '{id}' appears twice.");
                var split = Field("split") switch
                {
                    "train" => DatasetSplit.Train,
                    "test" => DatasetSplit.Test,
                    var other => throw new InvalidDataException($"{Where()}: split '{other}' must be 'train' or 'test'."),
                };
                var text = Field("text");
                if (texts.TryGetValue(text, out var first))
                    throw new InvalidDataException($"{Where()}: the same text is on line {first}; expected each text once.");
                texts[text] = lineNumber;
                items.Add(new DebianDescription(id, split, Field("label"), text));
            }
        }
        if (items.Count == 0) throw new InvalidDataException($"DebianDescriptions: '{path}' holds no examples.");
        var dataset = new DebianDescriptions(items);
        foreach (var label in dataset.Labels)
            foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Test })
                if (!items.Any(d => d.Label == label && d.Split == split))
                    throw new InvalidDataException($"DebianDescriptions: label '{label}' has no {split.ToString().ToLowerInvariant()} example in '{path}'.");
        return dataset;
    }

    /// <summary>
    /// The snapshot found from <paramref name="start"/> (default: the application's directory) or one of its
    /// parents (so both a build output that carries a copy and the repository work), looking for <c>data/debian-descriptions/descriptions.jsonl</c> and then for the file itself.
    /// </summary>
    public static string FindSnapshot(string? start = null)
    {
        for (var dir = new DirectoryInfo(start ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, RepositoryFolder, FileName);
            if (File.Exists(candidate)) return candidate;
        }
        throw new FileNotFoundException(
            $"DebianDescriptions: no {Path.Combine(RepositoryFolder, FileName)} in '{start ?? AppContext.BaseDirectory}' or any parent folder.");
    }
}
