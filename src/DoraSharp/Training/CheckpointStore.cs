using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using DoraSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.Training;

/// <summary>
/// Resumable training checkpoints in one directory. Each is a subdirectory <c>checkpoint-&lt;step&gt;</c> holding
/// <c>state.safetensors</c> (the trained parameters and the torch generator state), <c>optimizer.bin</c> (the
/// optimizer's moments and step counts, TorchSharp's <c>save_state_dict</c> format), <c>trainer.json</c> (the
/// position in training and the configuration fingerprint) and <c>checksum</c> (SHA-256 of the other three).
/// </summary>
/// <remarks>
/// A checkpoint is built in a hidden <c>.tmp-…</c> directory, each file fsync'ed, the checksum last, and the
/// directory is then renamed into place, so a <c>checkpoint-*</c> directory is always complete: a kill at any
/// moment leaves at worst a <c>.tmp-…</c> directory, which the next run deletes. Old checkpoints are renamed to
/// <c>.tmp-…</c> before they are deleted, for the same reason. Loading verifies the checksum; a damaged newest
/// checkpoint is reported through the warnings callback and the one before it is used.
/// The library prints nothing: warnings go to the <see cref="IProgress{T}"/> given.
/// </remarks>
public sealed class CheckpointStore
{
    internal const string StateFile = "state.safetensors";
    internal const string OptimizerFile = "optimizer.bin";
    internal const string ManifestFile = "trainer.json";
    internal const string ChecksumFile = "checksum";
    private const string Prefix = "checkpoint-";
    private const string TempPrefix = ".tmp-";
    private const string RngKey = "rng.torch";

    private readonly IProgress<string>? _warnings;

    /// <summary>A store over <see cref="CheckpointOptions.Directory"/>; nothing is touched until the first save or resume.</summary>
    /// <param name="options">Where, how often, how many.</param>
    /// <param name="warnings">Receives a message for each damaged checkpoint skipped; may be null.</param>
    public CheckpointStore(CheckpointOptions options, IProgress<string>? warnings = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _warnings = warnings;
    }

    /// <summary>The options given.</summary>
    public CheckpointOptions Options { get; }

    /// <summary>The step of the last checkpoint saved or resumed by this store, or -1.</summary>
    public long LastStep { get; private set; } = -1;

    /// <summary>The complete checkpoint directories (named <c>checkpoint-&lt;step&gt;</c>), oldest first; not verified.</summary>
    public IReadOnlyList<string> List()
    {
        if (!System.IO.Directory.Exists(Options.Directory)) return [];
        return System.IO.Directory.GetDirectories(Options.Directory, Prefix + "*")
            .Select(d => (Dir: d, Step: long.TryParse(Path.GetFileName(d)[Prefix.Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var s) ? s : -1))
            .Where(x => x.Step >= 0).OrderBy(x => x.Step).Select(x => x.Dir).ToArray();
    }

    /// <summary>
    /// Checks that <paramref name="checkpoint"/> is complete and undamaged: every file present, the checksums
    /// match and <c>trainer.json</c> parses. Throws <see cref="InvalidDataException"/> naming the file and the problem.
    /// </summary>
    public static void Verify(string checkpoint) => ReadVerified(checkpoint);

    /// <summary>Writes a checkpoint of the given state; on failure no <c>checkpoint-*</c> directory is changed.</summary>
    /// <exception cref="IOException">The checkpoint could not be written (message names the directory and cause); earlier checkpoints are intact.</exception>
    internal void Save(TrainingState state, IReadOnlyList<float> losses, IReadOnlyList<Parameter> parameters, optim.Optimizer optimizer, Dictionary<string, string> fingerprint)
    {
        var root = Options.Directory;
        var temp = Path.Combine(root, $"{TempPrefix}{Prefix}{state.Step}-{Guid.NewGuid():N}");
        var final = Path.Combine(root, $"{Prefix}{state.Step:D10}");
        try
        {
            System.IO.Directory.CreateDirectory(root);
            // Built under a .tmp- name and renamed into place (AtomicDirectory): a checkpoint-* directory is always
            // complete. A checkpoint of the same step is moved out of the checkpoint-* namespace first (.tmp-delete-…).
            AtomicDirectory.Replace(final, temp, () => Path.Combine(root, $"{TempPrefix}delete-{Guid.NewGuid():N}"),
                dir => WriteFiles(dir, state, losses, parameters, optimizer, fingerprint));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Whatever failed (a full disk, a tensor libtorch cannot copy, a serializer), the half-built directory is gone:
            // a failed save leaves the checkpoint directory as it was (issue 13).
            throw new IOException($"{root}: could not write the checkpoint of step {state.Step} ({e.Message}); the earlier checkpoints are unchanged", e);
        }
        LastStep = state.Step;
        Prune();
    }

    /// <summary>The four files of a checkpoint, each fsync'ed, the checksum of the other three last.</summary>
    private void WriteFiles(string dir, TrainingState state, IReadOnlyList<float> losses, IReadOnlyList<Parameter> parameters, optim.Optimizer optimizer, Dictionary<string, string> fingerprint)
    {
        using (var rng = torch.get_rng_state())
        {
            var tensors = parameters.Select((p, i) => new KeyValuePair<string, Tensor>(ParameterKey(i), p.detach()))
                .Append(new KeyValuePair<string, Tensor>(RngKey, rng)).ToList();
            try { SafetensorsFile.Write(Path.Combine(dir, StateFile), tensors); }
            finally { foreach (var t in tensors.Take(parameters.Count)) t.Value.Dispose(); }
        }
        Pause();
        AtomicFile.Write(Path.Combine(dir, OptimizerFile), s =>
        {
            // The writer must not close the stream AtomicFile fsyncs.
            using var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
            Helper(optimizer).save_state_dict(w);
        });
        Pause();
        var manifest = new CheckpointManifest { State = state, DataOrder = $"SplitMix64(seed {state.DataOrderSeed}, epoch {state.Epoch}) at batch {state.BatchInEpoch}", Fingerprint = fingerprint, Losses = losses.ToArray() };
        AtomicFile.Write(Path.Combine(dir, ManifestFile), s => JsonSerializer.Serialize(s, manifest, LibraryJsonContext.Default.CheckpointManifest));
        Pause();
        var sums = string.Concat(new[] { StateFile, OptimizerFile, ManifestFile }.Select(f => $"{Sha256(Path.Combine(dir, f))}  {f}\n"));
        AtomicFile.Write(Path.Combine(dir, ChecksumFile), s => s.Write(Encoding.UTF8.GetBytes(sums)));
        Pause();
    }

    /// <summary>
    /// Loads the newest complete, undamaged checkpoint into <paramref name="parameters"/> and <paramref name="optimizer"/>
    /// and the torch generator; returns its manifest, or null when there is none. Deletes leftover <c>.tmp-…</c> directories.
    /// </summary>
    /// <exception cref="CheckpointMismatchException">The newest undamaged checkpoint has a different fingerprint.</exception>
    internal CheckpointManifest? LoadNewest(IReadOnlyList<Parameter> parameters, optim.Optimizer optimizer, Dictionary<string, string> fingerprint)
    {
        CleanTemporaries();
        foreach (var dir in List().Reverse())
        {
            CheckpointManifest manifest;
            try { manifest = ReadVerified(dir); }
            catch (InvalidDataException e)
            {
                _warnings?.Report($"warning: {e.Message}; using the checkpoint before it");
                continue;
            }
            var differences = Differences(manifest.Fingerprint, fingerprint);
            if (differences.Count > 0) throw new CheckpointMismatchException(dir, differences);

            using var content = SafetensorsFile.Read(Path.Combine(dir, StateFile));
            using (torch.no_grad())
            {
                for (var i = 0; i < parameters.Count; i++)
                {
                    if (!content.Tensors.TryGetValue(ParameterKey(i), out var t))
                        throw new InvalidDataException($"{Path.Combine(dir, StateFile)}: tensor {ParameterKey(i)} is missing");
                    parameters[i].copy_(t);
                }
            }
            if (content.Tensors.TryGetValue(RngKey, out var rng)) torch.set_rng_state(rng);
            using (var stream = File.OpenRead(Path.Combine(dir, OptimizerFile)))
            using (var reader = new BinaryReader(stream))
                Helper(optimizer).load_state_dict(reader);
            LastStep = manifest.State.Step;
            return manifest;
        }
        return null;
    }

    private static CheckpointManifest ReadVerified(string dir)
    {
        var sumsPath = Path.Combine(dir, ChecksumFile);
        try
        {
            RegularFile.Check(sumsPath, problem => new InvalidDataException($"{sumsPath}: {problem}"));
            if (!File.Exists(sumsPath)) throw new InvalidDataException($"{sumsPath}: missing (the checkpoint is incomplete)");
            var lines = File.ReadAllLines(sumsPath).Where(l => l.Length > 0).ToArray();
            foreach (var name in new[] { StateFile, OptimizerFile, ManifestFile })
            {
                var line = lines.FirstOrDefault(l => l.EndsWith("  " + name, StringComparison.Ordinal))
                    ?? throw new InvalidDataException($"{sumsPath}: no checksum for {name}");
                var path = Path.Combine(dir, name);
                RegularFile.Check(path, problem => new InvalidDataException($"{path}: {problem}"));
                if (!File.Exists(path)) throw new InvalidDataException($"{path}: missing");
                var actual = Sha256(path);
                if (!string.Equals(line[..line.IndexOf(' ')], actual, StringComparison.Ordinal))
                    throw new InvalidDataException($"{path}: SHA-256 {actual} does not match the checksum file's {line[..line.IndexOf(' ')]} (the file is damaged)");
            }
            var manifestPath = Path.Combine(dir, ManifestFile);
            CheckpointManifest? manifest;
            try { manifest = JsonSerializer.Deserialize(File.ReadAllBytes(manifestPath), LibraryJsonContext.Default.CheckpointManifest); }
            catch (JsonException e) { throw new InvalidDataException($"{manifestPath}: not a valid trainer.json ({e.Message})", e); }
            if (manifest is null || manifest.Format != CheckpointManifest.CurrentFormat)
                throw new InvalidDataException($"{manifestPath}: format {manifest?.Format} is not {CheckpointManifest.CurrentFormat}");
            return manifest;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{dir}: unreadable ({e.Message})", e);
        }
    }

    private static List<string> Differences(Dictionary<string, string> saved, Dictionary<string, string> run)
    {
        var keys = saved.Keys.Union(run.Keys).Order(StringComparer.Ordinal);
        return keys.Where(k => !saved.TryGetValue(k, out var a) || !run.TryGetValue(k, out var b) || a != b)
            .Select(k => $"{k}: checkpoint {saved.GetValueOrDefault(k, "(none)")}, run {run.GetValueOrDefault(k, "(none)")}").ToList();
    }

    private void Prune()
    {
        var all = List();
        foreach (var dir in all.Take(System.Math.Max(0, all.Count - Options.Keep)))
        {
            try { Discard(dir); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _warnings?.Report($"warning: could not delete the old checkpoint {dir} ({e.Message})");
            }
        }
    }

    /// <summary>Deletes leftovers of interrupted saves and deletions (hidden <c>.tmp-</c> directories).</summary>
    private void CleanTemporaries()
    {
        if (!System.IO.Directory.Exists(Options.Directory)) return;
        foreach (var dir in System.IO.Directory.GetDirectories(Options.Directory, TempPrefix + "*")) TryDeleteTree(dir);
    }

    // Renamed out of the checkpoint-* namespace first, so a kill mid-delete never leaves a partial checkpoint-* directory.
    private static void Discard(string dir)
    {
        var doomed = Path.Combine(Path.GetDirectoryName(dir)!, $"{TempPrefix}delete-{Guid.NewGuid():N}");
        System.IO.Directory.Move(dir, doomed);
        TryDeleteTree(doomed);
    }

    // A leftover that cannot be deleted now is deleted by the next run (CleanTemporaries).
    private static void TryDeleteTree(string dir) => AtomicDirectory.TryDelete(dir);

    // The fault-injection tests' pause between files (CheckpointOptions.PauseBetweenFiles), zero otherwise.
    private void Pause()
    {
        if (Options.PauseBetweenFiles > TimeSpan.Zero) Thread.Sleep(Options.PauseBetweenFiles);
    }

    private static string ParameterKey(int i) => $"param.{i:D4}";

    private static OptimizerHelper Helper(optim.Optimizer optimizer) =>
        optimizer as OptimizerHelper ?? throw new NotSupportedException($"{optimizer.GetType().Name} cannot save its state.");

    private static string Sha256(string path)
    {
        using var s = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(s));
    }
}
