namespace DoraSharp.MiniLM.Export;

/// <summary>
/// The output folder built out of sight: everything is written to a hidden sibling <c>.&lt;name&gt;.export-&lt;id&gt;</c>
/// (same file system, so the final rename is atomic) and renamed into place only once the export has passed its
/// check, so the output folder never holds a half-written or unchecked model. An existing folder is refused unless
/// forced, and then replaced only at the end (renamed aside, the new one renamed in, the old one deleted), as
/// `dora train` replaces a run folder. Disposing an uncommitted staging deletes it.
/// <para>
/// A process killed mid-export (SIGKILL, power cut) cannot run that clean-up, so each staging folder has a lock file
/// beside it, <c>.&lt;name&gt;.export-&lt;id&gt;.lock</c>, held exclusively for the whole export (the lock dies with the
/// process). The next export to the same target deletes the staging folders whose lock nobody holds; a folder without a
/// lock file (none is ever left so, but one may be mid-creation) only once it is an hour old. An aside folder
/// (<c>….old</c>: the previous export, moved out of the way while the new one is renamed in) is deleted only when the
/// target exists; without a target it is the only copy of the previous export and is kept.
/// </para>
/// </summary>
internal sealed class ExportStaging : IDisposable
{
    private const string ExportInfix = ".export-";
    private const string LockSuffix = ".lock";
    private const string AsideSuffix = ".old";
    private static readonly TimeSpan UnlockedGrace = TimeSpan.FromHours(1);

    private bool committed;
    private FileStream? lockStream;

    private ExportStaging(string target, string folder, FileStream lockStream)
    {
        Target = target;
        Folder = folder;
        this.lockStream = lockStream;
    }

    /// <summary>The final folder (full path).</summary>
    public string Target { get; }

    /// <summary>The folder being written.</summary>
    public string Folder { get; }

    /// <summary>Checks <paramref name="output"/> (throws <see cref="ExportException"/> when it cannot be used) without creating anything.</summary>
    public static string CheckTarget(string output, bool force)
    {
        string target;
        try { target = Path.GetFullPath(output).TrimEnd(Path.DirectorySeparatorChar); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ExportException($"--out '{output}': not a valid path ({e.Message.TrimEnd('.')}).");
        }
        if (System.IO.File.Exists(target)) throw new ExportException($"--out {target} is a file; give a folder name for the exported model.");
        if (Directory.Exists(target) && !force)
            throw new ExportException($"--out {target} already exists; choose another folder, or add --force to replace it once the new export has passed its check.");
        if (Path.GetDirectoryName(target) is not { Length: > 0 } parent)
            throw new ExportException($"--out {target}: the exported model cannot be the root of the file system.");
        if (!Directory.Exists(parent))
            throw new ExportException($"--out {target}: the parent folder {parent} does not exist; create it first.");
        return target;
    }

    /// <summary>Creates the staging folder next to <paramref name="target"/> (a path <see cref="CheckTarget"/> accepted).</summary>
    public static ExportStaging Begin(string target)
    {
        var parent = Path.GetDirectoryName(target)!;
        var folder = Path.Combine(parent, $"{Prefix(target)}{Guid.NewGuid():N}");
        FileStream? held = null;
        try
        {
            // The lock first, so that no other export's sweep ever sees this folder without one.
            held = new FileStream(folder + LockSuffix, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            Directory.CreateDirectory(folder);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            held?.Dispose();
            TryDeleteFile(folder + LockSuffix);
            throw new ExportException($"--out {target}: cannot create a folder in {parent} ({e.Message.TrimEnd('.')}); choose a folder you can write to.", e);
        }
        SweepAbandoned(target, folder);
        return new ExportStaging(target, folder, held);
    }

    /// <summary>The name every staging folder of <paramref name="target"/> starts with: <c>.&lt;name&gt;.export-</c>.</summary>
    private static string Prefix(string target) => $".{Path.GetFileName(target)}{ExportInfix}";

    /// <summary>
    /// Deletes what killed exports to <paramref name="target"/> left beside it (see the class remarks); <paramref name="own"/>
    /// is this export's staging folder. Best effort: a leftover that cannot be deleted now is tried again next time.
    /// </summary>
    internal static void SweepAbandoned(string target, string own)
    {
        var parent = Path.GetDirectoryName(target)!;
        var prefix = Prefix(target);
        IEnumerable<string> candidates;
        try { candidates = Directory.EnumerateDirectories(parent, prefix + "*").ToList(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return; }
        foreach (var folder in candidates)
        {
            if (string.Equals(folder, own, StringComparison.Ordinal)) continue;
            var id = Path.GetFileName(folder)[prefix.Length..];
            if (id.EndsWith(AsideSuffix, StringComparison.Ordinal))
            {
                if (Directory.Exists(target) && IsStagingId(id[..^AsideSuffix.Length])) TryDeleteFolder(folder);
                continue;
            }
            if (!IsStagingId(id)) continue;
            var lockPath = folder + LockSuffix;
            if (System.IO.File.Exists(lockPath))
            {
                FileStream probe;
                try { probe = new FileStream(lockPath, FileMode.Open, FileAccess.ReadWrite, FileShare.None); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; } // a live export holds it
                using (probe) TryDeleteFolder(folder);
                TryDeleteFile(lockPath);
            }
            else if (DateTime.UtcNow - Directory.GetLastWriteTimeUtc(folder) > UnlockedGrace)
            {
                TryDeleteFolder(folder);
            }
        }
    }

    // A Guid in "N" format: 32 hexadecimal digits. Anything else beside the target is not ours and is left alone.
    private static bool IsStagingId(string id) => id.Length == 32 && id.All(char.IsAsciiHexDigit);

    private static void TryDeleteFolder(string? folder)
    {
        if (folder is null) return;
        try { if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private static void TryDeleteFile(string file)
    {
        try { System.IO.File.Delete(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>A path inside the staging folder.</summary>
    public string File(string name) => Path.Combine(Folder, name);

    /// <summary>Puts the finished export in place, replacing an existing folder (see the class remarks).</summary>
    public void Commit()
    {
        string? aside = null;
        if (Directory.Exists(Target))
        {
            aside = Folder + ".old";
            Directory.Move(Target, aside);
        }
        try
        {
            Directory.Move(Folder, Target);
        }
        catch (IOException e)
        {
            if (aside is not null && !Directory.Exists(Target)) Directory.Move(aside, Target);
            throw new ExportException($"--out {Target}: could not move the export into place ({e.Message.TrimEnd('.')}).", e);
        }
        committed = true;
        TryDeleteFolder(aside); // best effort: the export is in place; a leftover aside is swept by the next export
        ReleaseLock();
    }

    /// <summary>Deletes the staging folder unless it was committed, then its lock file.</summary>
    public void Dispose()
    {
        if (!committed) TryDeleteFolder(Folder);
        ReleaseLock();
    }

    private void ReleaseLock()
    {
        if (lockStream is null) return;
        lockStream.Dispose();
        lockStream = null;
        TryDeleteFile(Folder + LockSuffix);
    }
}
