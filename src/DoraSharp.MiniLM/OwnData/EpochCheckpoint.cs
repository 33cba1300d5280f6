using System.Text.Json;
using DoraSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>Where training stood after an epoch: everything but tensors (those are in <c>state.safetensors</c>).</summary>
public sealed record EpochProgress
{
    /// <summary>Epochs finished.</summary>
    public required int Epoch { get; init; }
    /// <summary>Their records.</summary>
    public required IReadOnlyList<EpochRecord> History { get; init; }
    /// <summary>Best epoch so far.</summary>
    public required int BestEpoch { get; init; }
    /// <summary>Epochs since it.</summary>
    public required int SinceBest { get; init; }
    /// <summary>The watched value of the best epoch (lower is better).</summary>
    public required double BestValue { get; init; }
    /// <summary>What must match to continue: the options and the data's digests.</summary>
    public required IReadOnlyDictionary<string, string> Fingerprint { get; init; }
}

/// <summary>
/// An epoch-level checkpoint of `dora train` in one folder: <c>state.safetensors</c> (the trained parameters as
/// <c>param.&lt;name&gt;</c>, the best epoch's copy as <c>best.&lt;name&gt;</c>, and libtorch's generator state),
/// one <c>optimizer-&lt;i&gt;.bin</c> per optimizer (TorchSharp's <c>save_state_dict</c>) and <c>progress.json</c>.
/// Written to a temporary folder and renamed over the previous one, so the folder is always a whole checkpoint.
/// Resuming restores all of it, and the batch order is replayed from the seed, so a resumed run ends with the same
/// weights as one never stopped (same machine and thread count).
/// </summary>
public sealed class EpochCheckpoint(string directory, IReadOnlyDictionary<string, string> fingerprint)
{
    /// <summary>
    /// Fault injection for tests: when this environment variable holds an epoch number, <see cref="Save"/> fails
    /// right after saving that epoch's checkpoint, as a crash at that moment would.
    /// </summary>
    public const string FaultStopVariable = "DORASHARP_FAULT_STOP_AFTER_EPOCH";

    private const string StateFile = "state.safetensors";
    private const string ProgressFile = "progress.json";
    private const string RngKey = "rng.torch";

    /// <summary>The checkpoint folder.</summary>
    public string Directory { get; } = directory;

    /// <summary>True when the folder holds a checkpoint.</summary>
    public bool Exists => File.Exists(Path.Combine(Directory, ProgressFile));

    /// <summary>Saves the state after <paramref name="progress"/>'s epoch.</summary>
    public void Save(EpochProgress progress, nn.Module model, IReadOnlyDictionary<string, Tensor>? best, IReadOnlyList<optim.Optimizer> optimizers)
    {
        var temp = Directory + ".tmp-" + Guid.NewGuid().ToString("N");
        System.IO.Directory.CreateDirectory(temp);
        try
        {
            using (var scope = NewDisposeScope())
            {
                var tensors = model.named_parameters().Where(p => p.parameter.requires_grad)
                    .Select(p => KeyValuePair.Create("param." + p.name, p.parameter.detach()))
                    .Concat((best ?? new Dictionary<string, Tensor>()).Select(kv => KeyValuePair.Create("best." + kv.Key, kv.Value)))
                    .Append(KeyValuePair.Create(RngKey, torch.get_rng_state()))
                    .ToList();
                SafetensorsFile.Write(Path.Combine(temp, StateFile), tensors);
            }
            for (int i = 0; i < optimizers.Count; i++)
            {
                using var stream = File.Create(Path.Combine(temp, $"optimizer-{i}.bin"));
                using var writer = new BinaryWriter(stream);
                ((OptimizerHelper)optimizers[i]).save_state_dict(writer);
            }
            // progress.json last: its presence marks a complete checkpoint.
            File.WriteAllBytes(Path.Combine(temp, ProgressFile), JsonSerializer.SerializeToUtf8Bytes(progress with { Fingerprint = fingerprint }, OwnDataJson.Default.EpochProgress));
            var old = Directory + ".old-" + Guid.NewGuid().ToString("N");
            if (System.IO.Directory.Exists(Directory)) System.IO.Directory.Move(Directory, old);
            System.IO.Directory.Move(temp, Directory);
            if (System.IO.Directory.Exists(old)) System.IO.Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (System.IO.Directory.Exists(temp)) System.IO.Directory.Delete(temp, recursive: true);
            throw;
        }
        if (Environment.GetEnvironmentVariable(FaultStopVariable) == progress.Epoch.ToString(System.Globalization.CultureInfo.InvariantCulture))
            throw new IOException($"{FaultStopVariable}: stopped after saving the checkpoint of epoch {progress.Epoch} (fault injection).");
    }

    /// <summary>
    /// Restores parameters, optimizer states and the generator; returns the progress and the best-epoch copy
    /// (the caller owns its tensors). A checkpoint of other options or data is refused naming what differs.
    /// </summary>
    public (EpochProgress Progress, Dictionary<string, Tensor>? Best) Load(nn.Module model, IReadOnlyList<optim.Optimizer> optimizers)
    {
        var progress = JsonSerializer.Deserialize(File.ReadAllBytes(Path.Combine(Directory, ProgressFile)), OwnDataJson.Default.EpochProgress)
            ?? throw new DataFileException($"{Directory}: {ProgressFile} is empty.");
        foreach (var (key, value) in fingerprint)
        {
            var saved = progress.Fingerprint.GetValueOrDefault(key);
            if (saved != value)
                throw new DataFileException($"--resume: the unfinished run in {Directory} was started with {key} = {saved ?? "(none)"}, this command has {value}; run the same command, or start over without --resume after deleting that folder.");
        }
        using var content = SafetensorsFile.Read(Path.Combine(Directory, StateFile));
        using (no_grad())
        {
            foreach (var (name, p) in model.named_parameters().Where(p => p.parameter.requires_grad))
            {
                if (!content.Tensors.TryGetValue("param." + name, out var t))
                    throw new DataFileException($"{Directory}: the checkpoint has no tensor for parameter '{name}'.");
                p.copy_(t);
            }
        }
        Dictionary<string, Tensor>? best = null;
        foreach (var (key, t) in content.Tensors)
            if (key.StartsWith("best.", StringComparison.Ordinal))
                (best ??= new(StringComparer.Ordinal))[key["best.".Length..]] = t.clone().DetachFromDisposeScope();
        if (content.Tensors.TryGetValue(RngKey, out var rng)) torch.set_rng_state(rng);
        for (int i = 0; i < optimizers.Count; i++)
        {
            using var stream = File.OpenRead(Path.Combine(Directory, $"optimizer-{i}.bin"));
            using var reader = new BinaryReader(stream);
            ((OptimizerHelper)optimizers[i]).load_state_dict(reader);
        }
        return (progress, best);
    }
}
