using DoraSharp.MiniLM;
using DoraSharp.MiniLM.OwnData;
using Xunit;

namespace DoraSharp.Tests.OwnData;

/// <summary>The bundled search pairs (data/debian-descriptions/make_search_pairs.py) read as `dora train --task similarity` reads them.</summary>
public sealed class SearchPairsDataTests
{
    private static TextPairs Read(string split)
    {
        var folder = Path.GetDirectoryName(DebianDescriptions.FindSnapshot())!;
        return TextPairs.From(TextTableReader.Read(Path.Combine(folder, $"search-pairs-{split}.jsonl")), "query", "document");
    }

    [Fact]
    public void The_bundled_pairs_read_cleanly_and_the_splits_share_no_document()
    {
        var train = Read("train");
        var test = Read("test");
        Assert.Equal(1000, train.Count);
        Assert.Equal(300, test.Count);
        // One pair per source package, split by source: no document is a candidate in both splits, or twice in one.
        Assert.Empty(train.Documents.Intersect(test.Documents, StringComparer.Ordinal));
        Assert.Equal(test.Count, test.Candidates().Documents.Count);
        Assert.All(test.Queries.Concat(test.Documents), t => Assert.DoesNotContain("://", t, StringComparison.Ordinal));
    }
}
