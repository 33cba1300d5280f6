namespace DoraSharp.IO;

/// <summary>
/// The adapter directory PEFT reads and writes — <c>adapter_config.json</c> next to <c>adapter_model.safetensors</c> —
/// found for a load and replaced as a whole for a save.
/// </summary>
/// <remarks>
/// <para><b>Why the whole directory is replaced.</b> The two files only make sense together: new tensors with the
/// old config (say, another lora_alpha) load without error and compute something else. Replacing the files one
/// after the other always leaves a moment where the pair is mixed, so a crash there would leave exactly that.
/// Instead the new pair is written and fsync'ed in a hidden sibling directory, and then put in place by renames,
/// which are atomic within one file system (<see cref="AtomicDirectory"/>, which checkpoints use too):</para>
/// <list type="number">
/// <item>no directory yet: rename staging → <c>dir</c>;</item>
/// <item>otherwise: rename <c>dir</c> → <c>.&lt;name&gt;.dorasharp-previous-&lt;id&gt;</c>, rename staging → <c>dir</c>,
/// delete the previous directory (if the second rename fails the first is undone).</item>
/// </list>
/// <para>So any reader, PEFT included, finds at <c>dir</c> either the complete old pair or the complete new pair;
/// a crash between the two renames of step 2 (two system calls apart) leaves no <c>dir</c> at all and the complete
/// old pair in the <c>-previous-</c> sibling, which a load then names in its error. Nothing is ever mixed.
/// As with <see cref="AtomicFile"/>, the parent directory is not fsync'ed (.NET cannot), so a power cut may undo a
/// rename, never half-apply one.</para>
/// <para><b>What the directory may hold.</b> Because it is replaced, a save refuses a directory holding anything
/// besides the adapter files and PEFT's model card <c>README.md</c> (which is carried over), rather than deleting
/// the user's files; save each adapter into a directory of its own, as PEFT does for named adapters. A symbolic
/// link at <c>dir</c> is refused too: the rename would replace the link, not the directory it points to.</para>
/// </remarks>
internal static class AdapterDirectory
{
    /// <summary>PEFT's <c>SAFETENSORS_WEIGHTS_NAME</c> for adapters.</summary>
    public const string TensorsFileName = "adapter_model.safetensors";

    /// <summary>PEFT's pickled weights file, which DoraSharp does not read (unpickling runs code).</summary>
    public const string PickleFileName = "adapter_model.bin";

    /// <summary>The model card PEFT writes next to the adapter; kept when the adapter is replaced.</summary>
    public const string ModelCardFileName = "README.md";

    private const string StagingTag = ".dorasharp-staging-";
    private const string PreviousTag = ".dorasharp-previous-";

    /// <summary>The config and tensor files of the adapter in <paramref name="directory"/>.</summary>
    /// <exception cref="AdapterFormatException">The directory or one of the two files does not exist, or a file is not a regular file.</exception>
    public static (string ConfigPath, string TensorsPath) Locate(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string configPath = Path.Combine(directory, PeftAdapterConfig.FileName);
        string tensorsPath = Path.Combine(directory, TensorsFileName);
        if (!Directory.Exists(directory))
        {
            string hint = InterruptedSaveHint(directory);
            throw new AdapterFormatException(directory, $"the adapter directory does not exist{hint}");
        }
        // Before anything is opened: a FIFO would block the open forever, a device never end (RegularFile).
        RegularFile.Check(configPath, problem => new AdapterFormatException(configPath, problem));
        RegularFile.Check(tensorsPath, problem => new AdapterFormatException(tensorsPath, problem));
        if (!File.Exists(configPath))
        {
            throw new AdapterFormatException(configPath, "the file does not exist; a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors");
        }
        if (!File.Exists(tensorsPath))
        {
            string why = File.Exists(Path.Combine(directory, PickleFileName))
                ? $"; the directory has {PickleFileName}, PEFT's pickle format, which DoraSharp does not read because unpickling can run code (re-save it with PEFT's save_pretrained(safe_serialization=True))"
                : "; a PEFT adapter directory holds adapter_config.json and adapter_model.safetensors";
            throw new AdapterFormatException(tensorsPath, "the file does not exist" + why);
        }
        return (configPath, tensorsPath);
    }

    /// <summary>
    /// Replaces <paramref name="directory"/> by one whose files <paramref name="writeFiles"/> writes into the
    /// staging directory it is given, atomically as described on the class.
    /// </summary>
    /// <param name="directory">The adapter directory to create or replace.</param>
    /// <param name="writeFiles">Writes the adapter files into the directory it is passed.</param>
    /// <param name="afterStep">Test hook, called with "staged" and "previous-moved"; it may throw to simulate a failure there.</param>
    /// <param name="subdirectories">
    /// The named adapters' sub-folders <paramref name="writeFiles"/> writes (PEFT's layout: a non-default adapter
    /// beside the default one, in a sub-folder named after it); the directory being replaced may hold these.
    /// </param>
    /// <exception cref="IOException">The directory cannot be replaced; the previous adapter, if any, is unchanged.</exception>
    public static void Replace(string directory, Action<string> writeFiles, Action<string>? afterStep = null, IReadOnlyCollection<string>? subdirectories = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string parent = Path.GetDirectoryName(full) ?? throw new IOException($"{directory}: cannot save an adapter as a file system root; choose a directory below it");
        string name = Path.GetFileName(full);

        if (File.Exists(full))
        {
            throw new IOException($"{directory}: a file with that name exists; an adapter is saved as a directory");
        }
        bool exists = Directory.Exists(full);
        if (exists)
        {
            CheckReplaceable(directory, full, subdirectories ?? []);
        }
        Directory.CreateDirectory(parent);

        string staging = Path.Combine(parent, $".{Cut(name)}{StagingTag}{Guid.NewGuid():N}");
        try
        {
            AtomicDirectory.Replace(full, staging, () => Path.Combine(parent, $".{Cut(name)}{PreviousTag}{Guid.NewGuid():N}"), folder =>
            {
                writeFiles(folder);
                string card = Path.Combine(full, ModelCardFileName);
                if (exists && File.Exists(card))
                {
                    File.Copy(card, Path.Combine(folder, ModelCardFileName));
                }
            }, afterStep);
        }
        catch (StrandedDirectoryException e)
        {
            // Both renames failed: say where the (complete, unchanged) previous adapter now is.
            throw new IOException(
                $"{directory}: could not save the adapter ({e.MoveFailure.Message}) nor move the previous adapter back " +
                $"({e.UndoFailure.Message}); it is complete and unchanged in {e.Aside}", e.MoveFailure);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{directory}: could not save the adapter ({e.Message}); any previous adapter there is unchanged", e);
        }
    }

    private static void CheckReplaceable(string directory, string full, IReadOnlyCollection<string> subdirectories)
    {
        if (new DirectoryInfo(full).LinkTarget is not null)
        {
            throw new IOException($"{directory}: is a symbolic link; saving replaces the directory, which would replace the link rather than its target: save to the target's path");
        }
        string[] allowed = [PeftAdapterConfig.FileName, TensorsFileName, ModelCardFileName];
        void Check(string folder, bool allowSubfolders)
        {
            foreach (string entry in Directory.EnumerateFileSystemEntries(folder))
            {
                string entryName = Path.GetFileName(entry);
                bool isFolder = Directory.Exists(entry);
                if (isFolder && allowSubfolders && subdirectories.Contains(entryName, StringComparer.Ordinal) && new DirectoryInfo(entry).LinkTarget is null)
                {
                    Check(entry, allowSubfolders: false);
                    continue;
                }
                if (!allowed.Contains(entryName, StringComparer.Ordinal) || isFolder)
                {
                    string what = Path.GetRelativePath(full, entry);
                    throw new IOException(
                        $"{directory}: holds {DisplayText.Quote(what)}, which is not part of the adapters being saved; saving replaces the directory as a whole " +
                        $"(so the adapter files always change together), so it only replaces a directory holding {string.Join(", ", allowed)}" +
                        (subdirectories.Count > 0 ? $" and the sub-folders of the adapters saved ({string.Join(", ", subdirectories)})" : "") +
                        ". Save them into a directory of its own.");
                }
            }
        }
        Check(full, allowSubfolders: true);
    }

    private static string InterruptedSaveHint(string directory)
    {
        string full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string? parent = Path.GetDirectoryName(full);
        if (parent is null || !Directory.Exists(parent)) return "";
        string pattern = $".{Cut(Path.GetFileName(full))}{PreviousTag}*";
        string? left = Directory.EnumerateDirectories(parent, pattern).FirstOrDefault();
        return left is null
            ? ""
            : $"; a save that was interrupted left the previous adapter in {left}: rename it to {directory} to use it";
    }

    // Hidden, recognizably ours, unique; the name is cut so the sibling's name stays under NAME_MAX.
    private static string Cut(string name) => name.Length > 100 ? name[..100] : name;
}
