using DoraSharp.MiniLM;
using Xunit;

namespace DoraSharp.Tests.MiniLM;

public sealed class TokenizerTests
{
    private static readonly Lazy<MiniLmTokenizer> Package = new(() => MiniLmTokenizer.FromPackage());

    [Fact]
    public void Vocabulary_and_special_ids_are_berts()
    {
        var t = Package.Value;
        Assert.Equal(30522, t.VocabularySize);
        Assert.Equal((0, 100, 101, 102), (t.PadId, t.UnknownId, t.ClsId, t.SepId));
        Assert.Equal(MiniLmTokenizer.DefaultMaxLength, t.MaxLength);
    }

    [Fact]
    public void Known_sentence_gives_known_ids()
    {
        // bert-base-uncased ids: hello 7592, "," 1010, world 2088, "!" 999.
        Assert.Equal([101, 7592, 1010, 2088, 999, 102], Package.Value.Encode("Hello, world!"));
        Assert.Equal(["[CLS]", "cafe", "naive", "[SEP]"], Package.Value.IdsToTokens(Package.Value.Encode("Café NAÏVE")));
    }

    [Fact]
    public void Ascii_symbols_are_words_and_tabs_separate_words()
    {
        var tokens = Package.Value.IdsToTokens(Package.Value.Encode("C++ x=1\tand\nlines $5"));
        Assert.Equal(["[CLS]", "c", "+", "+", "x", "=", "1", "and", "lines", "$", "5", "[SEP]"], tokens);
    }

    [Fact]
    public void Truncation_cuts_between_word_pieces()
    {
        var t = MiniLmTokenizer.FromPackage(maxLength: 5);
        // "supercalifragilistic" is several pieces; only the first three fit between [CLS] and [SEP].
        var full = MiniLmTokenizer.FromPackage(maxLength: 512).Encode("supercalifragilistic expialidocious");
        var cut = t.Encode("supercalifragilistic expialidocious");
        Assert.Equal(5, cut.Length);
        Assert.Equal(full[..4], cut[..4]);
        Assert.Equal(t.SepId, cut[4]);
        Assert.StartsWith("##", t.IdsToTokens([cut[3]])[0]);
    }

    [Fact]
    public void Batch_is_padded_to_its_longest_sentence()
    {
        var t = Package.Value;
        var batch = t.EncodeBatch(["Hi", "A much longer sentence here.", ""]);
        Assert.Equal(3, batch.BatchSize);
        Assert.Equal([3, 8, 2], batch.Lengths);
        Assert.Equal(8, batch.SequenceLength);
        Assert.Equal([101L, 7632, 102, 0, 0, 0, 0, 0], batch.InputIds[..8]);
        Assert.Equal([1L, 1, 1, 0, 0, 0, 0, 0], batch.AttentionMask[..8]);
        Assert.All(batch.TokenTypeIds, v => Assert.Equal(0L, v));
        Assert.Equal([101L, 102], batch.RowIds(2));
        using var scope = TorchSharp.torch.NewDisposeScope();
        var (ids, mask, types) = batch.ToTensors();
        Assert.Equal([3L, 8], ids.shape);
        Assert.Equal(TorchSharp.torch.ScalarType.Int64, mask.dtype);
        Assert.Equal(0L, types.sum().item<long>());
    }

    [Fact]
    public void Bad_vocabulary_is_rejected_with_the_token_named()
    {
        static MemoryStream Vocab(string s) => new(System.Text.Encoding.UTF8.GetBytes(s));
        var noSep = Assert.Throws<InvalidDataException>(() => new MiniLmTokenizer(Vocab("[PAD]\n[UNK]\n[CLS]\n[MASK]\na\n")));
        Assert.Contains("'[SEP]'", noSep.Message);
        var twice = Assert.Throws<InvalidDataException>(() => new MiniLmTokenizer(Vocab("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\na\na\n")));
        Assert.Contains("'a' appears on lines 6 and 7", twice.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new MiniLmTokenizer(Vocab("[PAD]\n"), maxLength: 1));
    }

    [Fact]
    public void Batch_with_a_wrong_mask_is_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new TokenizedBatch(1, 2, [101, 102], [1, 2], [0, 0]));
        Assert.Contains("attention_mask[1] is 2", e.Message);
        var size = Assert.Throws<ArgumentException>(() => new TokenizedBatch(1, 3, [101, 102], [1, 1], [0, 0]));
        Assert.Contains("input_ids has 2 entries, expected 1 x 3 = 3", size.Message);
    }
}
