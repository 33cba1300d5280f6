using System.Globalization;
using System.Text;

namespace DoraSharp.MiniLM;

/// <summary>
/// Unicode canonical decomposition (the per-character part of NFD) that works in .NET's
/// globalization-invariant mode, where <see cref="string.Normalize(NormalizationForm)"/> leaves non-ASCII text
/// unchanged. Data: <c>nfd-decompositions.txt</c>, generated from Python's unicodedata by
/// <c>scripts/generate-nfd-table.py</c>; Hangul syllables by Unicode's algorithm. Canonical reordering of
/// combining marks is not done: the tokenizer drops non-spacing marks right after, so their order never shows.
/// </summary>
internal static class CanonicalDecomposition
{
    private const string ResourceName = "DoraSharp.MiniLM.Tokenization.nfd-decompositions.txt";
    private static readonly Lazy<Dictionary<int, int[]>> Table = new(Load);

    // Hangul syllable decomposition constants (The Unicode Standard, section 3.12).
    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = 19 * NCount;

    /// <summary>Appends the full canonical decomposition of <paramref name="rune"/> to <paramref name="output"/>.</summary>
    public static void Append(Rune rune, List<Rune> output)
    {
        int cp = rune.Value;
        int s = cp - SBase;
        if (s is >= 0 and < SCount)
        {
            output.Add(new Rune(LBase + s / NCount));
            output.Add(new Rune(VBase + s % NCount / TCount));
            if (s % TCount != 0) output.Add(new Rune(TBase + s % TCount));
            return;
        }
        if (Table.Value.TryGetValue(cp, out var parts))
            foreach (var p in parts) output.Add(new Rune(p));
        else
            output.Add(rune);
    }

    private static Dictionary<int, int[]> Load()
    {
        using var stream = typeof(CanonicalDecomposition).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"CanonicalDecomposition: embedded resource '{ResourceName}' is missing.");
        using var reader = new StreamReader(stream);
        var table = new Dictionary<int, int[]>();
        int lineNumber = 0;
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine())
        {
            lineNumber++;
            if (line.Length == 0 || line[0] == '#') continue;
            var fields = line.Split(' ');
            if (fields.Length < 2)
                throw new InvalidDataException($"CanonicalDecomposition: line {lineNumber} '{line}' has no decomposition; expected 'CP D1 D2 ...'.");
            var values = fields.Select(f => int.Parse(f, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            table[values[0]] = values[1..];
        }
        return table;
    }
}
