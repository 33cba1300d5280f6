using DoraSharp.MiniLM.Export;
using Xunit;

namespace DoraSharp.Tests.Export;

/// <summary>
/// The export's staging folder: it is built beside the target under a lock, put in place whole, and what a killed
/// export left behind (a staging folder nobody holds) is deleted by the next export to the same target — but never a
/// live export's folder, the only copy of a previous export, or anything that is not an export staging folder.
/// </summary>
public sealed class ExportStagingTests : IDisposable
{
    private readonly string parent = Directory.CreateTempSubdirectory("dora-staging-").FullName;
    private string Target => Path.Combine(parent, "model");

    public void Dispose() => Directory.Delete(parent, recursive: true);

    private string[] Entries() => Directory.EnumerateFileSystemEntries(parent).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    private string Abandoned(string id, bool withLock, string file = "model.onnx")
    {
        var folder = Path.Combine(parent, $".model.export-{id}");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, file), "half-written");
        if (withLock) File.WriteAllText(folder + ".lock", "");
        return folder;
    }

    private static string NewId() => Guid.NewGuid().ToString("N");

    [Fact]
    public void Staging_is_a_locked_hidden_sibling_and_dispose_removes_both()
    {
        using (var staging = ExportStaging.Begin(Target))
        {
            Assert.Equal(parent, Path.GetDirectoryName(staging.Folder));
            Assert.StartsWith(".model.export-", Path.GetFileName(staging.Folder));
            Assert.True(Directory.Exists(staging.Folder));
            Assert.True(File.Exists(staging.Folder + ".lock"));
            // Held: another process (or this one) cannot take the lock while the export runs.
            Assert.ThrowsAny<IOException>(() => new FileStream(staging.Folder + ".lock", FileMode.Open, FileAccess.ReadWrite, FileShare.None));
            File.WriteAllText(staging.File("model.onnx"), "x");
        }
        Assert.Empty(Entries());
    }

    [Fact]
    public void Commit_replaces_the_target_and_leaves_nothing_beside_it()
    {
        Directory.CreateDirectory(Target);
        File.WriteAllText(Path.Combine(Target, "old.txt"), "previous export");
        using (var staging = ExportStaging.Begin(Target))
        {
            File.WriteAllText(staging.File("model.onnx"), "new");
            staging.Commit();
        }
        Assert.Equal(["model"], Entries());
        Assert.Equal(["model.onnx"], Directory.EnumerateFiles(Target).Select(Path.GetFileName));
    }

    [Fact]
    public void A_killed_exports_staging_folder_is_swept_by_the_next_export()
    {
        var unlocked = Abandoned(NewId(), withLock: true);
        var noLockOld = Abandoned(NewId(), withLock: false);
        Directory.SetLastWriteTimeUtc(noLockOld, DateTime.UtcNow.AddHours(-2));

        using (ExportStaging.Begin(Target)) { }

        Assert.False(Directory.Exists(unlocked));
        Assert.False(File.Exists(unlocked + ".lock"));
        Assert.False(Directory.Exists(noLockOld));
        Assert.Empty(Entries());
    }

    [Fact]
    public void A_live_export_a_fresh_unlocked_folder_and_foreign_folders_are_left_alone()
    {
        var live = Abandoned(NewId(), withLock: true);
        using var held = new FileStream(live + ".lock", FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        var fresh = Abandoned(NewId(), withLock: false);   // mid-creation, as far as anyone can tell
        var notOurs = Abandoned("backup", withLock: true);  // not a staging id
        var otherTarget = Path.Combine(parent, $".other.export-{NewId()}");
        Directory.CreateDirectory(otherTarget);
        File.WriteAllText(otherTarget + ".lock", "");

        using (ExportStaging.Begin(Target)) { }

        Assert.True(Directory.Exists(live));
        Assert.True(Directory.Exists(fresh));
        Assert.True(Directory.Exists(notOurs));
        Assert.True(Directory.Exists(otherTarget));
        Assert.True(File.Exists(Path.Combine(live, "model.onnx")));
    }

    [Fact]
    public void A_previous_export_moved_aside_is_deleted_only_when_the_target_exists()
    {
        var aside = Path.Combine(parent, $".model.export-{NewId()}.old");
        Directory.CreateDirectory(aside);
        File.WriteAllText(Path.Combine(aside, "model.onnx"), "previous export");

        // No target: the process died between the two renames and the aside folder is the only copy. Kept.
        using (ExportStaging.Begin(Target)) { }
        Assert.True(File.Exists(Path.Combine(aside, "model.onnx")));

        // The new export got in place before the process died: the aside folder is garbage.
        Directory.CreateDirectory(Target);
        using (ExportStaging.Begin(Target)) { }
        Assert.False(Directory.Exists(aside));
        Assert.Equal(["model"], Entries());
    }
}
