using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The cached mode of a DoRA variant's row norm n (<see cref="RowNormMode.Cached"/>). In training mode A and B
/// change every step, so n is recomputed (factored, see <see cref="DoraRowNorm.Factored"/>). In eval mode n is kept
/// and reused while A, B and W are unchanged — PEFT's docs measure unmerged DoRA inference at +139 % over LoRA
/// without such a cache. Validity is checked, not assumed: A and B are compared byte for byte with snapshots taken
/// when n was computed, and W by identity (<c>.to()</c> replaces it); merge, unmerge and loads invalidate explicitly.
/// The one change it cannot see is an in-place write into W by user code in eval mode: call
/// <see cref="LoraModel.InvalidateCaches"/> after one.
/// Deliberately not a module field of tensor type: <c>RegisterComponents</c> would make it a buffer.
/// </summary>
internal sealed class RowNormCache
{
    private Tensor? _norm;
    private Snapshot? _a, _b;
    private IntPtr _weightHandle;

    /// <summary>n for <paramref name="layer"/>: <paramref name="factored"/>'s, recomputed in training, kept in eval mode.</summary>
    public Tensor Get(LoraLayer layer, Func<LoraLayer, Tensor> factored, bool training)
    {
        if (training)
        {
            Invalidate();
            return factored(layer);
        }
        var w = layer.Weight;
        if (_norm is not null && _weightHandle == w.Handle && _a!.Matches(layer.LoraA) && _b!.Matches(layer.LoraB))
            return _norm.alias();
        Invalidate();
        using (no_grad())
        {
            _norm = factored(layer).DetachFromDisposeScope();
            _a = Snapshot.Of(layer.LoraA);
            _b = Snapshot.Of(layer.LoraB);
        }
        _weightHandle = w.Handle;
        return _norm!.alias();
    }

    /// <summary>Frees the kept norm and snapshots.</summary>
    public void Invalidate()
    {
        _norm?.Dispose();
        _norm = null;
        _a = _b = null;
        _weightHandle = IntPtr.Zero;
    }

    /// <summary>
    /// A factor's dtype, shape and bytes. Compared on every eval-mode call, so the comparison is a managed
    /// <c>SequenceEqual</c> over the tensor's own memory (a few µs for a 16 × 1024 factor), not <c>allclose</c>, whose
    /// dozen native calls cost ~45 µs per factor — most of unmerged DoRA's per-call cost over LoRA on small layers.
    /// Equal bytes mean equal values, so a match is always safe; values equal in another bit pattern (−0 and +0) only
    /// recompute n.
    /// </summary>
    private sealed class Snapshot
    {
        private readonly ScalarType _dtype;
        private readonly long[] _shape;
        private readonly byte[] _bytes;

        private Snapshot(ScalarType dtype, long[] shape, byte[] bytes) => (_dtype, _shape, _bytes) = (dtype, shape, bytes);

        public static Snapshot Of(Tensor t) => new(t.dtype, t.shape, ReadBytes(t, out var bytes) ? bytes.ToArray() : CopyBytes(t));

        public bool Matches(Tensor t)
        {
            if (t.dtype != _dtype || !t.shape.SequenceEqual(_shape)) return false;
            return ReadBytes(t, out var bytes) ? bytes.SequenceEqual(_bytes) : CopyBytes(t).AsSpan().SequenceEqual(_bytes);
        }

        // The tensor's own memory, without a copy, where it is a contiguous CPU tensor (every factor the library creates).
        private static bool ReadBytes(Tensor t, out ReadOnlySpan<byte> bytes)
        {
            bytes = default;
            if (t.device_type != DeviceType.CPU || !t.is_contiguous()) return false;
            bytes = t.bytes;
            return true;
        }

        private static byte[] CopyBytes(Tensor t)
        {
            using var scope = NewDisposeScope();
            return t.detach().cpu().contiguous().bytes.ToArray();
        }
    }
}
