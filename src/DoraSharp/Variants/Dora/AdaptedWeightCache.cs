using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// Unmerged inference for small DoRA Linear layers (<see cref="DoraRowNorm.DirectMaxElements"/> weights at most, e.g. the
/// demo MLP's): the adapted weight W' = (m/n)·(W + s·B·A) (paper eq. 5, what merging would write into W) kept while W,
/// A, B and m are unchanged, so that each eval-mode call is one <c>linear</c> plus three byte comparisons
/// (<see cref="TensorSnapshot"/>) instead of the norm-cache check and the fused node's eight native calls. On layers
/// this small per-call dispatch, not arithmetic, is the cost (issue 15, item 4), and W' costs at most 128 KB in float32.
/// Larger layers keep only the norm (<see cref="RowNormCache"/>): there W' would be a second copy of the weight.
/// Only used where no gradient reaches A, B or m (W' is detached); W is checked by identity, as the norm cache checks
/// it, and merge, unmerge and loads invalidate explicitly.
/// </summary>
internal sealed class AdaptedWeightCache
{
    private Tensor? _weight;
    private TensorSnapshot? _a, _b, _m;
    private IntPtr _weightHandle;

    /// <summary>True while an adapted weight is kept (for tests).</summary>
    internal bool IsHeld => _weight is not null;

    /// <summary>How many times W' was computed (for tests: a kept W' is not recomputed, a changed input is).</summary>
    internal int Computations { get; private set; }

    /// <summary>W' for <paramref name="layer"/> with magnitude <paramref name="magnitude"/>: the kept one while nothing changed, else <paramref name="compute"/>'s.</summary>
    public Tensor Get(LoraLayer layer, Tensor magnitude, Func<Tensor> compute)
    {
        var w = layer.Weight;
        if (_weight is not null && _weightHandle == w.Handle
            && _a!.Matches(layer.LoraA) && _b!.Matches(layer.LoraB) && _m!.Matches(magnitude))
            return _weight.alias();
        Invalidate();
        using (no_grad())
        {
            _weight = compute().DetachFromDisposeScope();
            Computations++;
            _a = TensorSnapshot.Of(layer.LoraA);
            _b = TensorSnapshot.Of(layer.LoraB);
            _m = TensorSnapshot.Of(magnitude);
        }
        _weightHandle = w.Handle;
        return _weight!.alias();
    }

    /// <summary>Frees the kept weight and snapshots.</summary>
    public void Invalidate()
    {
        _weight?.Dispose();
        _weight = null;
        _a = _b = _m = null;
        _weightHandle = IntPtr.Zero;
    }
}
