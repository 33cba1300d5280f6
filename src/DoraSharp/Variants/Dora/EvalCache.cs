using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// One tensor derived from a layer's base weight W and some of its adapter tensors, kept between eval-mode calls while
/// they are unchanged. A DoRA variant keeps two: the row norm n (from A and B, every layer type) — PEFT's docs measure
/// unmerged DoRA inference at +139 % over LoRA without such a cache — and, for small Linear layers, the adapted weight
/// W' = (m/n)·(W + s·B·A) itself (from A, B and m), so that inference there is one <c>linear</c> (see
/// <see cref="DoraLinearVariant"/>). Validity is checked, not assumed: the inputs are compared byte for byte with
/// snapshots taken when the value was derived (<see cref="TensorSnapshot"/>), W by identity (<c>.to()</c> replaces it);
/// merge, unmerge and loads invalidate explicitly. The one change it cannot see is an in-place write into W by user
/// code in eval mode: call <see cref="LoraModel.InvalidateCaches"/> after one.
/// Deliberately not a module field of tensor type: <c>RegisterComponents</c> would make it a buffer.
/// Thread-safe: a service may run one model's inference on several threads, and two first calls (or a call racing an
/// invalidation) would otherwise dispose the kept tensor under the other's feet; an uncontended lock costs ~20 ns.
/// </summary>
internal sealed class EvalCache
{
    private readonly Lock _gate = new();
    private Tensor? _value;
    private TensorSnapshot[] _inputs = [];
    private IntPtr _weightHandle;

    /// <summary>True while a value is kept (for tests).</summary>
    internal bool IsHeld => _value is not null;

    /// <summary>How many times the value was derived (for tests: a kept value is not recomputed, a changed input is).</summary>
    internal int Computations { get; private set; }

    /// <summary>
    /// The value derived from <paramref name="weight"/> and <paramref name="inputs"/>: the kept one while none changed,
    /// else <paramref name="compute"/>'s (run under no_grad, then kept). Returns an alias the caller may dispose.
    /// </summary>
    public Tensor Get(Tensor weight, IReadOnlyList<Tensor> inputs, Func<Tensor> compute)
    {
        lock (_gate) return GetLocked(weight, inputs, compute);
    }

    private Tensor GetLocked(Tensor weight, IReadOnlyList<Tensor> inputs, Func<Tensor> compute)
    {
        if (_value is not null && _weightHandle == weight.Handle && Unchanged(inputs))
            return _value.alias();
        InvalidateLocked();
        using (no_grad())
        {
            _value = compute().DetachFromDisposeScope();
            _inputs = inputs.Select(TensorSnapshot.Of).ToArray();
        }
        Computations++;
        _weightHandle = weight.Handle;
        return _value!.alias();
    }

    private bool Unchanged(IReadOnlyList<Tensor> inputs)
    {
        if (_inputs.Length != inputs.Count) return false;
        for (var i = 0; i < inputs.Count; i++)
            if (!_inputs[i].Matches(inputs[i])) return false;
        return true;
    }

    /// <summary>Frees the kept value and snapshots.</summary>
    public void Invalidate()
    {
        lock (_gate) InvalidateLocked();
    }

    private void InvalidateLocked()
    {
        _value?.Dispose();
        _value = null;
        _inputs = [];
        _weightHandle = IntPtr.Zero;
    }
}
