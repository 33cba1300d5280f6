namespace DoraSharp.Cli.OwnData;

/// <summary>
/// Builds a run folder out of sight and puts it in place whole. Everything is written to a hidden sibling
/// <c>.&lt;name&gt;.partial-&lt;id&gt;</c> (same file system, so the final rename is atomic); a failed or stopped run
/// deletes it, so <c>--out</c> never holds a half-written run. An existing <c>--out</c> is refused unless
/// <c>--force</c>, and even then it is replaced only once the new run is complete (renamed aside, the new one
/// renamed in, the old one deleted). Two runs racing for the same <c>--out</c> each train in their own staging
/// folder; the second to finish finds the folder taken and fails with a message instead of overwriting it.
/// </summary>
internal sealed class RunStaging : IDisposable
{
    private bool _committed;

    private RunStaging(string target, string staging)
    {
        Target = target;
        Staging = staging;
    }

    /// <summary>The final run folder (full path).</summary>
    public string Target { get; }

    /// <summary>The folder being written.</summary>
    public string Staging { get; }

    /// <summary>Checks <paramref name="output"/> and creates the staging folder next to it.</summary>
    public static RunStaging Begin(string output, bool force)
    {
        string target;
        try { target = Path.GetFullPath(output); }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new UsageException($"--out '{output}': not a valid path ({e.Message.TrimEnd('.')}).");
        }
        if (System.IO.File.Exists(target)) throw new UsageException($"--out {target} is a file; give a folder name for the run.");
        if (Directory.Exists(target) && Directory.EnumerateFileSystemEntries(target).Any() && !force)
            throw new UsageException($"--out {target} already exists and is not empty; choose another folder, or add --force to replace it once the new run has finished.");
        var parent = Path.GetDirectoryName(target.TrimEnd(Path.DirectorySeparatorChar))
            ?? throw new UsageException($"--out {target}: a run folder cannot be the root of the file system.");
        var staging = Path.Combine(parent, $".{Path.GetFileName(target.TrimEnd(Path.DirectorySeparatorChar))}.partial-{Guid.NewGuid():N}");
        try { Directory.CreateDirectory(staging); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out {target}: cannot create a folder in {parent} ({e.Message.TrimEnd('.')}); choose a folder you can write to.");
        }
        return new RunStaging(target, staging);
    }

    /// <summary>A path inside the staging folder.</summary>
    public string File(string name) => Path.Combine(Staging, name);

    /// <summary>Puts the finished run in place (replacing an old one, see the class remarks).</summary>
    public void Commit()
    {
        string? aside = null;
        if (Directory.Exists(Target))
        {
            aside = Staging + ".old";
            Directory.Move(Target, aside);
        }
        try
        {
            Directory.Move(Staging, Target);
        }
        catch (IOException e)
        {
            if (aside is not null && !Directory.Exists(Target)) Directory.Move(aside, Target);
            throw new IOException($"--out {Target}: could not move the finished run into place ({e.Message.TrimEnd('.')}); it is kept in {Staging}.", e);
        }
        _committed = true;
        if (aside is not null) Directory.Delete(aside, recursive: true);
    }

    /// <summary>Deletes the staging folder unless the run was committed.</summary>
    public void Dispose()
    {
        if (_committed) return;
        try { if (Directory.Exists(Staging)) Directory.Delete(Staging, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
