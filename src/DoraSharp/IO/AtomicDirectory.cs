namespace DoraSharp.IO;

/// <summary>
/// Puts a whole directory in place atomically, as <see cref="AtomicFile"/> does for one file: the new directory is
/// written and fsync'ed under a hidden staging name beside the target, then renamed into place — renames are atomic
/// within one file system, so a reader finds the complete old directory or the complete new one, never a mix.
/// Used for adapter directories (<see cref="AdapterDirectory"/>) and training checkpoints (<c>CheckpointStore</c>).
/// </summary>
/// <remarks>
/// Steps: write into <c>staging</c>; then, when the target does not exist, rename staging → target; otherwise rename
/// target → <c>aside</c>, staging → target, and delete <c>aside</c> (if the second rename fails the first is undone).
/// A crash between the two renames (two system calls apart) leaves no target and the complete old directory at
/// <c>aside</c>; callers name their staging and aside directories so they recognise such leftovers. The parent
/// directory is not fsync'ed (.NET cannot), so a power cut may undo a rename, never half-apply one.
/// </remarks>
internal static class AtomicDirectory
{
    /// <summary>Puts the directory <paramref name="write"/> fills at <paramref name="target"/>, atomically as described on the class.</summary>
    /// <param name="target">The directory to create or replace.</param>
    /// <param name="staging">The hidden sibling to build it in; must not exist.</param>
    /// <param name="aside">Where an existing <paramref name="target"/> is moved while the new one takes its place; called only when it exists.</param>
    /// <param name="write">Fills the staging directory it is passed.</param>
    /// <param name="afterStep">Test hook, called with "staged" and "previous-moved"; it may throw to simulate a failure there.</param>
    /// <exception cref="StrandedDirectoryException">The new directory could not be put in place nor the old one moved back; it is complete at <see cref="StrandedDirectoryException.Aside"/>.</exception>
    /// <remarks>On any other failure the staging directory is deleted, the target is as it was, and the failure is rethrown.</remarks>
    public static void Replace(string target, string staging, Func<string> aside, Action<string> write, Action<string>? afterStep = null)
    {
        bool exists = Directory.Exists(target);
        string? previous = null;
        try
        {
            Directory.CreateDirectory(staging);
            write(staging);
            afterStep?.Invoke("staged");
            if (!exists)
            {
                Directory.Move(staging, target);
                return;
            }
            previous = aside();
            Directory.Move(target, previous);
            try
            {
                afterStep?.Invoke("previous-moved");
                Directory.Move(staging, target);
            }
            catch (Exception moveFailure)
            {
                try
                {
                    Directory.Move(previous, target);
                }
                catch (Exception undoFailure) when (undoFailure is IOException or UnauthorizedAccessException)
                {
                    throw new StrandedDirectoryException(previous, moveFailure, undoFailure);
                }
                previous = null;
                throw;
            }
        }
        catch
        {
            TryDelete(staging);
            throw;
        }
        TryDelete(previous);
    }

    /// <summary>Deletes <paramref name="path"/> and everything in it if it exists; a failure is ignored (best effort: the caller's outcome is decided).</summary>
    public static void TryDelete(string? path)
    {
        if (path is null) return;
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the save itself succeeded or already failed with the error that matters.
        }
    }
}

/// <summary>
/// <see cref="AtomicDirectory.Replace"/> could neither put the new directory in place nor move the old one back: the
/// old directory is complete and unchanged at <see cref="Aside"/>.
/// </summary>
internal sealed class StrandedDirectoryException(string aside, Exception moveFailure, Exception undoFailure)
    : IOException($"could not put the new directory in place ({moveFailure.Message}) nor move the previous one back ({undoFailure.Message}); it is complete and unchanged in {aside}", moveFailure)
{
    /// <summary>Where the previous directory now is.</summary>
    public string Aside { get; } = aside;

    /// <summary>Why the new directory could not be put in place.</summary>
    public Exception MoveFailure { get; } = moveFailure;

    /// <summary>Why the previous directory could not be moved back.</summary>
    public Exception UndoFailure { get; } = undoFailure;
}
