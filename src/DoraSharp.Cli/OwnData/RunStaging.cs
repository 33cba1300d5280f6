namespace DoraSharp.Cli.OwnData;

/// <summary>
/// Builds a run folder out of sight and puts it in place whole. Everything is written to a hidden sibling
/// <c>.&lt;name&gt;.partial</c> (same file system, so the final rename is atomic), so <c>--out</c> never holds a
/// half-written run. The staging folder also holds the epoch checkpoints (<c>checkpoint/</c>): a run that fails
/// or is stopped after an epoch keeps it for <c>--resume</c>; one that has no checkpoint yet deletes it.
/// A lock file inside it (opened exclusively for the whole run) keeps two `dora train` processes from writing
/// the same staging folder. An existing <c>--out</c> is refused unless <c>--force</c>, and even then it is
/// replaced only once the new run is complete (renamed aside, the new one renamed in, the old one deleted).
/// </summary>
internal sealed class RunStaging : IDisposable
{
    private const string LockFile = ".lock";
    private bool _committed;
    private FileStream? _lock;

    private RunStaging(string target, string staging)
    {
        Target = target;
        Staging = staging;
    }

    /// <summary>The epoch checkpoint folder inside the staging folder.</summary>
    public string CheckpointDirectory => Path.Combine(Staging, "checkpoint");

    /// <summary>True when the staging folder holds a whole epoch checkpoint.</summary>
    public bool HasCheckpoint => System.IO.File.Exists(Path.Combine(CheckpointDirectory, "progress.json"));

    /// <summary>The final run folder (full path).</summary>
    public string Target { get; }

    /// <summary>The folder being written.</summary>
    public string Staging { get; }

    /// <summary>Checks <paramref name="output"/> and creates the staging folder next to it.</summary>
    public static RunStaging Begin(string output, bool force, bool resume = false)
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
        var staging = Path.Combine(parent, $".{Path.GetFileName(target.TrimEnd(Path.DirectorySeparatorChar))}.partial");
        var run = new RunStaging(target, staging);
        if (resume && !run.HasCheckpoint)
            throw new UsageException($"--resume: there is no unfinished run of {target} to continue ({staging} holds no epoch checkpoint; one is saved after each epoch but the last).");
        try
        {
            Directory.CreateDirectory(staging);
            run._lock = new FileStream(Path.Combine(staging, LockFile), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException) when (Directory.Exists(staging) && System.IO.File.Exists(Path.Combine(staging, LockFile)))
        {
            throw new UsageException($"--out {target}: another `dora train` is writing it right now ({staging} is locked).");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--out {target}: cannot create a folder in {parent} ({e.Message.TrimEnd('.')}); choose a folder you can write to.");
        }
        if (!resume && run.HasCheckpoint)
        {
            run.ReleaseLock();
            throw new UsageException($"{staging} holds the checkpoint of an unfinished run of {target}: add --resume to continue it, or delete that folder to start over.");
        }
        if (!resume)
        {
            // Leftovers of a run stopped before its first checkpoint: nothing in them can be continued.
            foreach (var entry in Directory.EnumerateFileSystemEntries(staging).Where(e => Path.GetFileName(e) != LockFile))
                if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true); else System.IO.File.Delete(entry);
        }
        return run;
    }

    /// <summary>A path inside the staging folder.</summary>
    public string File(string name) => Path.Combine(Staging, name);

    /// <summary>Puts the finished run in place (replacing an old one, see the class remarks).</summary>
    public void Commit()
    {
        if (Directory.Exists(CheckpointDirectory)) Directory.Delete(CheckpointDirectory, recursive: true);
        ReleaseLock();
        System.IO.File.Delete(Path.Combine(Staging, LockFile));
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

    private void ReleaseLock()
    {
        _lock?.Dispose();
        _lock = null;
    }

    /// <summary>Unless the run was committed: keeps the staging folder when it holds a checkpoint (for --resume), else deletes it.</summary>
    public void Dispose()
    {
        ReleaseLock();
        if (_committed) return;
        if (HasCheckpoint)
        {
            Console.Error.WriteLine($"dora: the finished epochs of {Target} are checkpointed in {Staging}; run the same command with --resume to continue.");
            return;
        }
        try { if (Directory.Exists(Staging)) Directory.Delete(Staging, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
