namespace DoraSharp.IO;

/// <summary>
/// Replaces a file all at once: readers see either the old file or the complete new one, never a torn write.
/// </summary>
/// <remarks>
/// The content goes to a temporary file in the target's directory (same file system, so the final rename is
/// atomic), is flushed and fsync'ed, and is then renamed over the target. If anything fails, the temporary file
/// is deleted and the previous file, if any, is left as it was. The directory itself is not fsync'ed after the
/// rename (.NET cannot open a directory for that), so after a power cut the rename may be lost, but never half
/// applied. Renaming replaces a symbolic link at <c>path</c> rather than the file it points to, and the new file
/// gets default permissions, not the old file's.
/// </remarks>
internal static class AtomicFile
{
    /// <summary>
    /// Writes the file at <paramref name="path"/> through <paramref name="writeContent"/>, atomically.
    /// </summary>
    /// <param name="path">The file to create or replace.</param>
    /// <param name="writeContent">Writes the whole content to the stream it is given; it must not close it.</param>
    /// <exception cref="IOException">
    /// The file could not be written (a directory of that name exists, the directory is missing or read-only,
    /// the disk is full...): the message names <paramref name="path"/> and the cause.
    /// </exception>
    public static void Write(string path, Action<Stream> writeContent)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(writeContent);

        string fullPath = Path.GetFullPath(path);
        if (Directory.Exists(fullPath))
        {
            throw new IOException($"{path}: cannot write the file because a directory with that name exists");
        }
        string directory = Path.GetDirectoryName(fullPath) ?? throw new IOException($"{path}: cannot write the file: the path has no parent directory");
        string tempPath = Path.Combine(directory, TempName(Path.GetFileName(fullPath)));

        FileStream? stream = null;
        try
        {
            stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
            writeContent(stream);
            stream.Flush(flushToDisk: true);
            stream.Dispose();
            stream = null;
            File.Move(tempPath, fullPath, overwrite: true);
        }
        catch (Exception e)
        {
            stream?.Dispose();
            TryDelete(tempPath);
            if (e is IOException or UnauthorizedAccessException)
            {
                throw new IOException($"{path}: could not write the file ({e.Message}); any previous file there is unchanged", e);
            }
            throw;
        }
    }

    // Hidden, recognizably ours, unique; the target's name is cut so the temp name stays under NAME_MAX.
    private static string TempName(string fileName) =>
        $".{(fileName.Length > 100 ? fileName[..100] : fileName)}.{Guid.NewGuid():N}.tmp";

    private static void TryDelete(string tempPath)
    {
        try
        {
            File.Delete(tempPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The original failure is the one to report; a temp file we could not create cannot be deleted either.
        }
    }
}
