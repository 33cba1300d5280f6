using System.Security.Cryptography;
using System.Text;
using DoraSharp.MiniLM;
using Xunit;

namespace DoraSharp.Tests.MiniLM;

/// <summary>The committed Debian descriptions snapshot and its loader.</summary>
public sealed class DebianDescriptionsTests
{
    private static readonly Lazy<DebianDescriptions> Snapshot = new(() => DebianDescriptions.Load(DebianDescriptions.FindSnapshot()));

    [Fact]
    public void Snapshot_has_five_balanced_sections_600_train_150_test_each()
    {
        var d = Snapshot.Value;
        Assert.Equal(["admin", "devel", "libs", "net", "utils"], d.Labels);
        Assert.Equal(3750, d.All.Count);
        foreach (var label in d.Labels)
        {
            Assert.Equal(600, d.Train.Count(x => x.Label == label));
            Assert.Equal(150, d.Test.Count(x => x.Label == label));
        }
        Assert.Equal(2, d.LabelIndex("libs"));
        Assert.Throws<ArgumentException>(() => d.LabelIndex("python"));
    }

    [Fact]
    public void Order_and_ids_follow_the_documented_deterministic_rule()
    {
        var d = Snapshot.Value;
        // File order: train then test, each by label then id.
        var expected = d.All.OrderBy(x => x.Split).ThenBy(x => x.Label, StringComparer.Ordinal).ThenBy(x => x.Id, StringComparer.Ordinal);
        Assert.Equal(expected, d.All);
        // id = sha256("<seed>:pick:" + text)[..16], the key the script samples by.
        foreach (var x in d.All)
        {
            var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("dorasharp-debian-descriptions-v1:pick:" + x.Text)));
            Assert.Equal(hash[..16], x.Id);
        }
        var again = DebianDescriptions.Load(DebianDescriptions.FindSnapshot());
        Assert.Equal(d.All, again.All);
    }

    [Fact]
    public void Train_and_test_share_no_text_and_texts_are_long_descriptions()
    {
        var d = Snapshot.Value;
        Assert.Empty(d.Train.Select(x => x.Text).Intersect(d.Test.Select(x => x.Text)));
        Assert.All(d.All, x => Assert.True(x.Text.Split((char[])[' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Length >= 12, $"{x.Id} is short"));
        // No deb822 field survived into a text.
        Assert.DoesNotContain(d.All, x => x.Text.StartsWith("Package:") || x.Text.Contains("\nPackage:") || x.Text.Contains("Description-md5"));
    }

    private static string Write(params string[] lines)
    {
        var path = Path.Combine(Path.GetTempPath(), $"debian-descriptions-{Guid.NewGuid():N}.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    private const string TrainA = """{"id": "0000000000000001", "split": "train", "label": "a", "text": "one text"}""";
    private const string TestA = """{"id": "0000000000000002", "split": "test", "label": "a", "text": "two text"}""";

    [Fact]
    public void A_package_column_is_refused()
    {
        var path = Write(TrainA, """{"id": "0000000000000003", "split": "test", "label": "a", "text": "x y", "package": "grep"}""");
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => DebianDescriptions.Load(path));
            Assert.Contains("line 2 has fields [id, split, label, text, package]; expected exactly [id, split, label, text] (unexpected: package)", e.Message);
        }
        finally { File.Delete(path); }
    }

    [Theory]
    [InlineData("""{"id": "0000000000000003", "split": "dev", "label": "a", "text": "x"}""", "split 'dev' must be 'train' or 'test'")]
    [InlineData("""{"id": "0000000000000001", "split": "test", "label": "a", "text": "x"}""", "id '0000000000000001' appears twice")]
    [InlineData("""{"id": "XYZ", "split": "test", "label": "a", "text": "x"}""", "id 'XYZ' must be 16 lower-case hex digits")]
    [InlineData("""{"id": "0000000000000003", "split": "test", "label": "a", "text": "one text"}""", "the same text is on line 1")]
    [InlineData("""{"id": "0000000000000003", "split": "test", "label": "", "text": "x"}""", "'label' must be a non-empty string")]
    [InlineData("""{"id": "0000000000000003", "split": "train", "label": "b", "text": "x"}""", "label 'b' has no test example")]
    [InlineData("not json", "line 2 is not JSON")]
    public void Bad_lines_are_refused_with_line_and_reason(string line, string message)
    {
        var path = Write(TrainA, line, TestA);
        try
        {
            var e = Assert.Throws<InvalidDataException>(() => DebianDescriptions.Load(path));
            Assert.Contains(message, e.Message);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Valid_small_file_loads()
    {
        var path = Write(TrainA, TestA);
        try
        {
            var d = DebianDescriptions.Load(path);
            Assert.Equal([new DebianDescription("0000000000000001", DatasetSplit.Train, "a", "one text")], d.Train);
            Assert.Single(d.Test);
        }
        finally { File.Delete(path); }
    }
}
