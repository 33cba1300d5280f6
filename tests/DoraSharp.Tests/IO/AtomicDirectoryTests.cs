using DoraSharp.IO;
using Xunit;

namespace DoraSharp.Tests.IO;

/// <summary><see cref="AtomicDirectory"/>: the one directory swap adapter saves and checkpoints use.</summary>
public sealed class AtomicDirectoryTests : IDisposable
{
    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    private static void Write(string dir, string text) => File.WriteAllText(Path.Combine(dir, "file.txt"), text);

    private static string Read(string dir) => File.ReadAllText(Path.Combine(dir, "file.txt"));

    [Fact]
    public void A_new_directory_is_put_in_place_and_an_existing_one_replaced_leaving_nothing_else()
    {
        string target = _temp.File("target");
        AtomicDirectory.Replace(target, _temp.File(".staging-1"), () => _temp.File(".aside-1"), d => Write(d, "old"));
        Assert.Equal("old", Read(target));

        AtomicDirectory.Replace(target, _temp.File(".staging-2"), () => _temp.File(".aside-2"), d => Write(d, "new"));

        Assert.Equal("new", Read(target));
        Assert.Equal(["target"], _temp.Entries());
        Assert.Equal(["file.txt"], Directory.GetFileSystemEntries(target).Select(Path.GetFileName));
    }

    [Theory]
    [InlineData("writing")]
    [InlineData("staged")]
    [InlineData("previous-moved")]
    public void A_failure_at_any_step_leaves_the_old_directory_and_no_staging_or_aside(string step)
    {
        string target = _temp.File("target");
        AtomicDirectory.Replace(target, _temp.File(".staging-1"), () => _temp.File(".aside-1"), d => Write(d, "old"));

        var e = Assert.Throws<IOException>(() => AtomicDirectory.Replace(target, _temp.File(".staging-2"), () => _temp.File(".aside-2"),
            d => { Write(d, "new"); if (step == "writing") throw new IOException("simulated"); },
            afterStep: s => { if (s == step) throw new IOException("simulated"); }));

        Assert.Equal("simulated", e.Message);
        Assert.Equal("old", Read(target));
        Assert.Equal(["target"], _temp.Entries());
    }
}
