namespace DoraSharp.Cli;

/// <summary>
/// Keeps a second `dora` run out of a folder this run writes (--out, --checkpoint-dir): the file <c>.dora.lock</c> in the
/// folder, held open with <see cref="FileShare.None"/> for the whole run.
/// </summary>
/// <remarks>
/// <para><b>Why an OS file lock.</b> On Linux and macOS .NET takes an exclusive <c>flock(2)</c> on a file opened with
/// <see cref="FileShare.None"/> (on Windows the share mode itself excludes other openers). The kernel drops that lock when the
/// process ends however it ends — SIGKILL, a crash, a power cut — so a killed run never leaves the folder stuck, and
/// nothing has to decide whether a lock left behind is stale (a PID file would: PIDs are reused). Two runs in one
/// process exclude each other too, because each opens the file anew.</para>
/// <para><b>What it does not cover.</b> The lock is advisory on Unix: it stops other `dora` runs, not a program that
/// ignores it; it is not honoured over every network file system; and .NET skips it when
/// <c>DOTNET_SYSTEM_IO_DISABLEFILELOCKING</c> is set. The file stays in the folder after the run: deleting a lock file while
/// others may have it open would let two runs hold locks on two different files of the same name.</para>
/// </remarks>
internal sealed class FolderLock : IDisposable
{
    public const string FileName = ".dora.lock";

    private readonly FileStream _stream;

    private FolderLock(FileStream stream) => _stream = stream;

    /// <summary>Takes the lock of <paramref name="folder"/> (which must exist), or refuses at once if another run holds it.</summary>
    /// <param name="option">The option that named the folder, for the message.</param>
    /// <param name="folder">The full path of the folder.</param>
    /// <exception cref="UsageException">Another run holds the folder, or the lock file cannot be created.</exception>
    public static FolderLock Acquire(string option, string folder)
    {
        var path = Path.Combine(folder, FileName);
        try
        {
            // No FileOptions.DeleteOnClose: see the remarks.
            return new FolderLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (e is not (FileNotFoundException or DirectoryNotFoundException or PathTooLongException))
        {
            // On Unix a held flock comes back as IOException (EWOULDBLOCK); an unwritable folder as UnauthorizedAccessException.
            throw new UsageException($"{option} '{folder}' is in use by another dora run (it holds {path}); wait for that run to end or choose another folder.");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option} '{folder}': cannot create the lock file {path} ({e.Message.ReplaceLineEndings(" ").TrimEnd('.')}); choose a folder you can write to.");
        }
    }

    public void Dispose() => _stream.Dispose();
}
