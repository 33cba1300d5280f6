namespace DoraSharp.Cli;

/// <summary>
/// The files and folders a command owns in --out (say results.json, losses.csv, the plots, adapters/ and base/), written
/// so that --out never holds a mix of two runs: the new outputs are staged, every one fsync'ed, in a hidden folder of
/// --out, and only then swapped in, each old entry moved aside and each new one renamed into place (renames within
/// one file system, microseconds apart), the old ones deleted last. An owned entry this run does not produce (an
/// older run's adapters/lora-r8, say) is removed with the rest, so nothing of an older run survives beside the new results.
/// </summary>
/// <remarks>
/// A failure while staging changes nothing in --out. A failure during the swap moves everything back. A kill during
/// the swap can leave a mix, but the run's checkpoints are deleted only after the swap, so that run must be resumed
/// (a new run into the same checkpoints is refused), and the resumed run swaps in the same outputs again;
/// <see cref="RemoveLeftovers"/> clears what a killed swap left. The caller holds the folder's <see cref="FolderLock"/>.
/// </remarks>
internal sealed class RunOutputs
{
    /// <summary>Test hook: pause this many milliseconds at every step of staging and swapping, so a test can kill the process there.</summary>
    public const string FaultDelayVariable = "DORASHARP_FAULT_DELAY_OUTPUTS_MS";

    /// <summary>Test hook, called with the name of each step ("render", "staged", "swapping", "swapped"); it may throw to simulate a failure there.</summary>
    internal static readonly AsyncLocal<Action<string>?> FaultHook = new();

    private const string StagingPrefix = ".dora-staging-";
    private const string PreviousTag = ".dora-previous-";

    private readonly string _folder;
    private readonly IReadOnlyList<string> _owned;

    /// <param name="folder">The full path of --out.</param>
    /// <param name="owned">The names in --out this command owns; names with an extension are files, the others folders.</param>
    public RunOutputs(string folder, IReadOnlyList<string> owned)
    {
        _folder = folder;
        _owned = owned;
    }

    /// <summary>
    /// Before any work: refuses an owned name taken by the wrong kind of entry (a folder named results.json would be
    /// deleted by the swap), and removes what a killed run's staging or swap left behind.
    /// </summary>
    /// <exception cref="UsageException">An owned name is taken by the wrong kind of entry.</exception>
    public void Prepare()
    {
        foreach (var name in _owned)
        {
            var path = Path.Combine(_folder, name);
            var isFile = Path.HasExtension(name);
            if (isFile ? Directory.Exists(path) : File.Exists(path))
                throw new UsageException($"--out: {path} is a {(isFile ? "folder" : "file")}, but dora writes a {(isFile ? "file" : "folder")} of that name there; move it away or choose another --out.");
        }
        RemoveLeftovers();
    }

    /// <summary>Deletes staging folders and moved-aside entries left by a killed run (only names this class makes).</summary>
    public void RemoveLeftovers()
    {
        foreach (var dir in Directory.EnumerateDirectories(_folder, StagingPrefix + "*")) Directory.Delete(dir, recursive: true);
        foreach (var entry in Directory.EnumerateFileSystemEntries(_folder, "*" + PreviousTag + "*")) Delete(entry);
    }

    /// <summary>Creates an empty staging folder for the outputs and returns its path.</summary>
    public string Stage()
    {
        var staging = Path.Combine(_folder, StagingPrefix + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(staging);
        return staging;
    }

    /// <summary>Swaps the staged outputs in (see the class); deletes the staging folder either way.</summary>
    /// <exception cref="IOException">An entry could not be moved; everything was moved back.</exception>
    public void Commit(string staging)
    {
        var id = Guid.NewGuid().ToString("N");
        var asides = new List<(string Target, string Aside)>();
        var placed = new List<(string Staged, string Target)>();
        try
        {
            FaultPoint("staged");
            foreach (var name in _owned)
            {
                var target = Path.Combine(_folder, name);
                if (!Exists(target)) continue;
                var aside = Path.Combine(_folder, $".{name}{PreviousTag}{id}");
                Move(target, aside);
                asides.Add((target, aside));
                FaultPoint("swapping");
            }
            foreach (var name in _owned)
            {
                var staged = Path.Combine(staging, name);
                if (!Exists(staged)) continue;
                var target = Path.Combine(_folder, name);
                Move(staged, target);
                placed.Add((staged, target));
                FaultPoint("swapping");
            }
            FaultPoint("swapped");
        }
        catch
        {
            // Undo in reverse: new entries back into staging, old ones back into place.
            foreach (var (staged, target) in Enumerable.Reverse(placed)) TryMove(target, staged);
            foreach (var (target, aside) in Enumerable.Reverse(asides)) TryMove(aside, target);
            TryDelete(staging);
            throw;
        }
        foreach (var (_, aside) in asides) Delete(aside);
        Delete(staging);
    }

    /// <summary>Deletes a staging folder after a failure (best effort).</summary>
    public static void Discard(string staging) => TryDelete(staging);

    /// <summary>
    /// Copies the folder tree <paramref name="source"/> into <paramref name="destination"/>, every file fsync'ed; a file
    /// that exists already is an error (two producers of one output).
    /// </summary>
    public static void CopyTree(string source, string destination)
    {
        Directory.CreateDirectory(destination);
        foreach (var dir in Directory.EnumerateDirectories(source))
            CopyTree(dir, Path.Combine(destination, Path.GetFileName(dir)));
        foreach (var file in Directory.EnumerateFiles(source))
        {
            using var input = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read);
            using var output = new FileStream(Path.Combine(destination, Path.GetFileName(file)), FileMode.CreateNew, FileAccess.Write, FileShare.None);
            input.CopyTo(output);
            output.Flush(flushToDisk: true);
        }
    }

    /// <summary>Writes a file and fsyncs it (staged files need no rename: the staging folder is swapped in as a whole).</summary>
    public static void WriteDurably(string path, ReadOnlySpan<byte> content)
    {
        using var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        output.Write(content);
        output.Flush(flushToDisk: true);
    }

    /// <summary>A step of writing the outputs: runs <see cref="FaultHook"/> and the <see cref="FaultDelayVariable"/> pause.</summary>
    internal static void FaultPoint(string name)
    {
        FaultHook.Value?.Invoke(name);
        if (int.TryParse(Environment.GetEnvironmentVariable(FaultDelayVariable), out var ms) && ms > 0) Thread.Sleep(ms);
    }

    /// <summary>True for a file, a folder or a symbolic link (even a dangling one).</summary>
    private static bool Exists(string path) => File.Exists(path) || Directory.Exists(path) || new FileInfo(path).LinkTarget is not null;

    private static void Move(string from, string to)
    {
        if (Directory.Exists(from) && new DirectoryInfo(from).LinkTarget is null) Directory.Move(from, to);
        else File.Move(from, to);
    }

    private static void Delete(string path)
    {
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null) Directory.Delete(path, recursive: true);
        else File.Delete(path);
    }

    private static void TryMove(string from, string to)
    {
        try { Move(from, to); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* the original failure is the one to report */ }
    }

    private static void TryDelete(string path)
    {
        try { if (Exists(path)) Delete(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { /* as above */ }
    }
}
