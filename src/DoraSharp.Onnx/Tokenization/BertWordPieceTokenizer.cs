using System.Text;
using DoraSharp.MiniLM;
using Microsoft.ML.Tokenizers;

namespace DoraSharp.Onnx;

/// <summary>
/// all-MiniLM-L6-v2's tokenizer for the exported model: Hugging Face's <c>BertWordPiece</c> pipeline. Microsoft.ML.Tokenizers'
/// <see cref="WordPieceTokenizer"/> holds the vocabulary and cuts each word into pieces; the steps before it are HF's
/// rules from the same source files DoraSharp.MiniLM's tokenizer compiles (<c>BertPieces</c>: special tokens matched
/// verbatim in the raw text, <c>BertNormalizer</c>, <c>BertPreTokenizer</c>, truncation, padding), because ML.Tokenizers' own <c>BertTokenizer</c> drops ASCII
/// symbols such as <c>$ + = &lt; &gt;</c> and leaves accents in globalization-invariant applications (see
/// MiniLmTokenizer's remarks), which would give a deployed model other ids than it was trained and checked with.
/// </summary>
internal sealed class BertWordPieceTokenizer
{
    /// <summary>HF's <c>max_input_chars_per_word</c> for BERT, counted in code points.</summary>
    private const int MaxInputCharsPerWord = 100;

    private readonly WordPieceTokenizer wordPiece;
    private readonly Dictionary<string, int> specialIds;
    private readonly int clsId, sepId, padId, unkId;

    private BertWordPieceTokenizer(WordPieceTokenizer wordPiece, Dictionary<string, int> specialIds, BertTokenizerConfig config, int maxLength)
    {
        this.wordPiece = wordPiece;
        this.specialIds = specialIds;
        clsId = specialIds[config.ClsToken];
        sepId = specialIds[config.SepToken];
        padId = specialIds[config.PadToken];
        unkId = specialIds[config.UnkToken];
        MaxLength = maxLength;
    }

    /// <summary>Tokens per text, [CLS] and [SEP] included.</summary>
    public int MaxLength { get; }

    /// <summary>
    /// Reads the vocabulary at <paramref name="vocabularyPath"/>; throws <see cref="OnnxModelException"/> naming the file
    /// when it lacks a special token of <paramref name="config"/> or the settings are not all-MiniLM-L6-v2's.
    /// </summary>
    public static BertWordPieceTokenizer Create(string vocabularyPath, string configPath, BertTokenizerConfig config, int maxLength)
    {
        // Only the pipeline BertNormalizer implements is accepted; another setting would be silently ignored otherwise.
        if (!config.DoLowerCase || config.StripAccents == false || !config.TokenizeChineseChars)
            throw new OnnxModelException(
                $"{configPath}: do_lower_case {config.DoLowerCase}, strip_accents {config.StripAccents?.ToString() ?? "null"}, tokenize_chinese_chars {config.TokenizeChineseChars}; " +
                "this reader implements do_lower_case true, strip_accents null or true, tokenize_chinese_chars true (all-MiniLM-L6-v2's).");
        if (maxLength < 2) throw new OnnxModelException($"{configPath}: model_max_length {maxLength}, expected at least 2 to hold [CLS] and [SEP].");
        var lines = File.ReadAllLines(vocabularyPath, new UTF8Encoding(false));
        var specials = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var token in new[] { config.PadToken, config.UnkToken, config.ClsToken, config.SepToken, config.MaskToken })
        {
            int id = Array.IndexOf(lines, token);
            if (id < 0) throw new OnnxModelException($"{vocabularyPath}: the vocabulary has no '{token}' token, which {configPath} names.");
            specials[token] = id;
        }
        using var stream = File.OpenRead(vocabularyPath);
        var tokenizer = WordPieceTokenizer.Create(stream, new WordPieceOptions
        {
            UnknownToken = config.UnkToken,
            ContinuingSubwordPrefix = "##",
            // Words are measured in code points below (as HF does); a word of 100 code points has at most 200 chars.
            MaxInputCharsPerWord = 2 * MaxInputCharsPerWord,
        });
        return new BertWordPieceTokenizer(tokenizer, specials, config, maxLength);
    }

    /// <summary>The ids of one text: [CLS], its first <see cref="MaxLength"/> - 2 word pieces, [SEP].</summary>
    public int[] Encode(string text) => BertPieces.Frame(BertPieces.Encode(text, specialIds, AppendWord), clsId, sepId, MaxLength);

    /// <summary>
    /// Tokenizes <paramref name="texts"/> and pads them with [PAD] to the longest: row-major <c>(B, T)</c> input ids,
    /// attention mask and token type ids (all 0), as the graph takes them.
    /// </summary>
    public (long[] InputIds, long[] AttentionMask, long[] TokenTypeIds, int Length) EncodeBatch(IReadOnlyList<string> texts) =>
        BertPieces.Pad([.. texts.Select(Encode)], padId);

    private void AppendWord(string word, List<int> ids)
    {
        int chars = 0;
        foreach (var _ in word.EnumerateRunes()) chars++;
        if (chars > MaxInputCharsPerWord)
        {
            ids.Add(unkId);
            return;
        }
        // The word is already normalised and split: ML.Tokenizers only looks it up, piece by piece.
        ids.AddRange(wordPiece.EncodeToIds(word, considerPreTokenization: false, considerNormalization: false));
    }
}
