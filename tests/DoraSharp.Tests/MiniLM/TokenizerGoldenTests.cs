using System.Text.Json;
using DoraSharp.MiniLM;
using Xunit;
using Xunit.Abstractions;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// MiniLmTokenizer against Hugging Face tokenizers (Rust core, npm package 0.23.2) on the same vocabulary:
/// Golden/MiniLM/tokenizer-golden.json, written by scripts/minilm-tokenizer-golden.js.
/// </summary>
public sealed class TokenizerGoldenTests(ITestOutputHelper output)
{
    private static readonly Lazy<MiniLmTokenizer> Untruncated = new(() => MiniLmTokenizer.FromPackage(maxLength: 1_000_000));

    private sealed record GoldenCase(string Text, int[] Ids);

    private static IReadOnlyList<GoldenCase> Cases()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Golden", "MiniLM", "tokenizer-golden.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("cases").EnumerateArray()
            .Select(c => new GoldenCase(c.GetProperty("text").GetString()!, c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray()))
            .ToArray();
    }

    [Fact]
    public void Every_golden_case_tokenizes_exactly_as_hugging_face()
    {
        var cases = Cases();
        Assert.True(cases.Count >= 130, $"golden file has only {cases.Count} cases");
        var tokenizer = Untruncated.Value;
        var failures = new List<string>();
        foreach (var c in cases)
        {
            var ours = tokenizer.Encode(c.Text);
            if (!ours.SequenceEqual(c.Ids))
                failures.Add($"'{c.Text}'\n  HF:   {string.Join(" ", tokenizer.IdsToTokens(c.Ids))}\n  ours: {string.Join(" ", tokenizer.IdsToTokens(ours))}");
        }
        foreach (var f in failures) output.WriteLine(f);
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} cases differ from Hugging Face; first: {failures.FirstOrDefault()}");
    }

    [Fact]
    public void Truncation_keeps_the_first_pieces_and_ends_with_sep()
    {
        var tokenizer = MiniLmTokenizer.FromPackage(); // 128
        int truncated = 0;
        foreach (var c in Cases())
        {
            var ours = tokenizer.Encode(c.Text);
            if (c.Ids.Length <= 128)
            {
                Assert.Equal(c.Ids, ours);
                continue;
            }
            truncated++;
            Assert.Equal(128, ours.Length);
            Assert.Equal(c.Ids[..127], ours[..127]);
            Assert.Equal(tokenizer.SepId, ours[127]);
        }
        Assert.True(truncated >= 2, $"only {truncated} golden cases are longer than 128 tokens");
    }
}
