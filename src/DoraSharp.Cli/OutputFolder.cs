namespace DoraSharp.Cli;

/// <summary>Makes sure --out can take our files before any training starts, so a bad folder costs nothing.</summary>
internal static class OutputFolder
{
    /// <summary>Creates the folder if needed and proves it writable by creating and deleting a file; returns its full path.</summary>
    /// <exception cref="UsageException">The folder cannot be created or written; the message names it and the cause.</exception>
    public static string Prepare(string option, string path)
    {
        string full;
        try
        {
            full = Path.GetFullPath(path);
            Directory.CreateDirectory(full);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw new UsageException($"{option} '{path}': cannot create the folder ({OneLine(e.Message)}); choose a folder you can write to.");
        }
        var probe = Path.Combine(full, $".dora-write-test-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe)) { }
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{option} '{full}' is not writable ({OneLine(e.Message)}); choose a folder you can write to.");
        }
        return full;
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").TrimEnd('.');
}
