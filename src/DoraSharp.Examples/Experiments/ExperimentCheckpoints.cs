using System.Text.Json;
using DoraSharp.IO;
using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// Makes a <see cref="FineTuneExperiment"/> resumable: each phase (a seed's pretraining, each arm of a seed) gets
/// its own checkpoint directory <c>seed-&lt;seed&gt;/&lt;phase&gt;/</c>, and a finished phase leaves a
/// <c>phase.json</c> with its results there, so a resumed experiment skips the finished phases (reloading a
/// finished pretraining's weights from its last checkpoint) and continues the interrupted one from its newest
/// checkpoint. Every result comes out as in an uninterrupted run, except the training times, which count only
/// the time since the last resume.
/// </summary>
public sealed class ExperimentCheckpoints
{
    internal const string PhaseFile = "phase.json";
    private const string SeedPrefix = "seed-";
    private readonly IProgress<string>? _warnings;

    /// <param name="options">The root directory, how often to save within a phase, how many checkpoints to keep per phase (the fingerprint is the experiment's own).</param>
    /// <param name="warnings">Receives a message for each damaged checkpoint skipped; may be null.</param>
    public ExperimentCheckpoints(CheckpointOptions options, IProgress<string>? warnings = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        _warnings = warnings;
    }

    /// <summary>The options given.</summary>
    public CheckpointOptions Options { get; }

    /// <summary>True when <paramref name="directory"/> holds phases of an experiment (finished or not).</summary>
    public static bool HoldsRun(string directory) =>
        Directory.Exists(directory) && Directory.GetDirectories(directory, SeedPrefix + "*").Length > 0;

    /// <summary>Deletes the phase directories (only those this class creates), e.g. once the results are saved.</summary>
    /// <remarks>
    /// Each seed's directory is first renamed out of the run (atomically) and only then deleted: a kill in the middle of a
    /// recursive delete must not leave a phase whose <c>phase.json</c> survived but whose files did not, which a resumed
    /// run would count as finished. A seed renamed away is simply run again on resume; the next delete clears the rest.
    /// </remarks>
    public void Delete()
    {
        if (!Directory.Exists(Options.Directory)) return;
        foreach (var dir in Directory.GetDirectories(Options.Directory, SeedPrefix + "*"))
            Directory.Move(dir, Path.Combine(Options.Directory, $"{DeletedPrefix}{Path.GetFileName(dir)}-{Guid.NewGuid():N}"));
        foreach (var dir in Directory.GetDirectories(Options.Directory, DeletedPrefix + "*")) Directory.Delete(dir, recursive: true);
    }

    private const string DeletedPrefix = ".deleted-";

    internal CheckpointStore Store(long seed, string phase, Dictionary<string, string> fingerprint) =>
        new(Options with { Directory = PhaseDirectory(seed, phase), Fingerprint = fingerprint }, _warnings);

    /// <summary>The recorded result of a finished phase, or null; a record of another configuration is refused.</summary>
    /// <exception cref="CheckpointMismatchException">The phase was run with a different configuration.</exception>
    internal PhaseRecord? Finished(long seed, string phase, Dictionary<string, string> fingerprint)
    {
        var path = Path.Combine(PhaseDirectory(seed, phase), PhaseFile);
        if (!File.Exists(path)) return null;
        if (RegularFile.NonRegularKind(path) is { } kind)
        {
            _warnings?.Report($"warning: {path}: is {kind}, not a regular file; running the phase again");
            return null;
        }
        PhaseRecord? record;
        try { record = JsonSerializer.Deserialize(File.ReadAllBytes(path), ExamplesJsonContext.Default.PhaseRecord); }
        catch (JsonException e)
        {
            _warnings?.Report($"warning: {path}: unreadable ({e.Message}); running the phase again");
            return null;
        }
        if (record is null) return null;
        var differences = fingerprint.Keys.Union(record.Fingerprint.Keys).Order(StringComparer.Ordinal)
            .Where(k => fingerprint.GetValueOrDefault(k) != record.Fingerprint.GetValueOrDefault(k))
            .Select(k => $"{k}: checkpoint {record.Fingerprint.GetValueOrDefault(k, "(none)")}, run {fingerprint.GetValueOrDefault(k, "(none)")}").ToList();
        if (differences.Count > 0) throw new CheckpointMismatchException(path, differences);
        return record;
    }

    /// <summary>Records a finished phase (atomically: the file is there whole or not at all).</summary>
    internal void MarkFinished(long seed, string phase, PhaseRecord record)
    {
        var dir = PhaseDirectory(seed, phase);
        Directory.CreateDirectory(dir);
        AtomicFile.Write(Path.Combine(dir, PhaseFile), s => JsonSerializer.Serialize(s, record, ExamplesJsonContext.Default.PhaseRecord));
    }

    /// <summary>
    /// The directory of one phase (<c>seed-&lt;seed&gt;/&lt;phase&gt;</c>, e.g. <c>seed-123/lora-r4</c>): its checkpoints, its
    /// <c>phase.json</c> once finished, and any files an experiment's callback keeps there for the phase. It is deleted by
    /// <see cref="Delete"/> with everything in it.
    /// </summary>
    /// <param name="seed">The seed of the phase.</param>
    /// <param name="phase">"pretraining" or an arm's <see cref="FineTuneArm.Slug"/>.</param>
    public string PhaseDirectory(long seed, string phase)
    {
        ArgumentException.ThrowIfNullOrEmpty(phase);
        return Path.Combine(Options.Directory, $"{SeedPrefix}{seed}", phase);
    }
}
