using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Analysis;

/// <summary>One point of the analysis: a layer at a checkpoint.</summary>
/// <param name="Method">"FT", "LoRA", "DoRA" or any label.</param>
/// <param name="Layer">Module path of the weight.</param>
/// <param name="Checkpoint">1-based checkpoint index.</param>
/// <param name="Step">Training step at which it was recorded.</param>
/// <param name="DeltaDirection">ΔD.</param>
/// <param name="DeltaMagnitude">ΔM.</param>
public sealed record DecompositionPoint(string Method, string Layer, int Checkpoint, long Step, double DeltaDirection, double DeltaMagnitude);

/// <summary>
/// Records ΔM and ΔD of a set of weights during training, for any model: snapshots W0 at construction
/// and measures the effective weights whenever <see cref="Record"/> is called. For a wrapped model the
/// effective weight of an adapted layer is what it applies (<see cref="LoraLayer.EffectiveWeight"/>, with
/// the DoRA magnitude); for full fine-tuning, the module's own weight.
/// </summary>
public sealed class MagnitudeDirectionTracker : IDisposable
{
    private readonly string _method;
    private readonly List<(string Path, Func<(Tensor Weight, Tensor? Magnitude)> Current, Tensor W0)> _weights = new();
    private readonly List<DecompositionPoint> _points = new();

    private MagnitudeDirectionTracker(string method) => _method = method;

    /// <summary>Tracks every adapted layer of <paramref name="lora"/>; call before training starts.</summary>
    public static MagnitudeDirectionTracker ForAdapters(string method, LoraModel lora)
    {
        var tracker = new MagnitudeDirectionTracker(method);
        foreach (var (path, layer) in lora.Layers)
            tracker.Add(path, () => (layer.EffectiveWeight(), layer.Magnitude?.detach().clone()), layer.EffectiveWeight());
        return tracker;
    }

    /// <summary>Tracks the <c>weight</c> parameter of the named modules (full fine-tuning); call before training.</summary>
    public static MagnitudeDirectionTracker ForWeights(string method, nn.Module model, IEnumerable<string> modulePaths)
    {
        var tracker = new MagnitudeDirectionTracker(method);
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var path in modulePaths)
        {
            var key = path + ".weight";
            if (!parameters.ContainsKey(key))
                throw new ArgumentException($"Model has no parameter '{key}' to track.", nameof(modulePaths));
            tracker.Add(path, () => (model.named_parameters().First(p => p.name == key).parameter.detach().clone(), null),
                parameters[key].detach().clone());
        }
        return tracker;
    }

    private void Add(string path, Func<(Tensor, Tensor?)> current, Tensor w0)
        => _weights.Add((path, current, w0.DetachFromDisposeScope()));

    /// <summary>The points recorded so far.</summary>
    public IReadOnlyList<DecompositionPoint> Points => _points;

    /// <summary>Measures every tracked weight now, as checkpoint <paramref name="checkpoint"/> at <paramref name="step"/>.</summary>
    public void Record(int checkpoint, long step)
    {
        foreach (var (path, current, w0) in _weights)
        {
            using var scope = NewDisposeScope();
            var (weight, magnitude) = current();
            var change = WeightDecomposition.Measure(w0, weight, magnitude);
            _points.Add(new DecompositionPoint(_method, path, checkpoint, step, change.DeltaDirection, change.DeltaMagnitude));
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var w in _weights) w.W0.Dispose();
        _weights.Clear();
    }
}
