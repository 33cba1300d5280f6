namespace DoraSharp.MiniLM.Export;

/// <summary>
/// The output folder built out of sight: everything is written to a hidden sibling <c>.&lt;name&gt;.export-&lt;id&gt;</c>
/// (same file system, so the final rename is atomic) and renamed into place only once the export has passed its
/// check, so the output folder never holds a half-written or unchecked model. An existing folder is refused unless
/// forced, and then replaced only at the end (renamed aside, the new one renamed in, the old one deleted), as
/// `dora train` replaces a run folder. Disposing an uncommitted staging deletes it.
/// </summary>
internal sealed class ExportStaging : IDisposable
{
    private bool committed;

    private ExportStaging(string target, string folder)
    {
        Target = target;
        Folder = folder;
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
        var folder = Path.Combine(parent, $".{Path.GetFileName(target)}.export-{Guid.NewGuid():N}");
        try { Directory.CreateDirectory(folder); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ExportException($"--out {target}: cannot create a folder in {parent} ({e.Message.TrimEnd('.')}); choose a folder you can write to.", e);
        }
        return new ExportStaging(target, folder);
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
        if (aside is not null) Directory.Delete(aside, recursive: true);
    }

    /// <summary>Deletes the staging folder unless it was committed.</summary>
    public void Dispose()
    {
        if (committed) return;
        try { if (Directory.Exists(Folder)) Directory.Delete(Folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
