using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// A tensor's dtype, shape and bytes, for the eval-mode caches (<see cref="EvalCache"/>)
/// to tell whether a factor or magnitude changed since a value was derived from it. Compared on every eval-mode call,
/// so the comparison is a managed <c>SequenceEqual</c> over the tensor's own memory (a few µs for a 16 × 1024 factor),
/// not <c>allclose</c>, whose dozen native calls cost ~12 µs per tensor — a large part of unmerged DoRA's per-call cost
/// over LoRA on small layers. Equal bytes mean equal values, so a match is always safe; values equal in another bit
/// pattern (−0 and +0) only recompute.
/// </summary>
internal sealed class TensorSnapshot
{
    private readonly ScalarType _dtype;
    private readonly long[] _shape;
    private readonly byte[] _bytes;

    private TensorSnapshot(ScalarType dtype, long[] shape, byte[] bytes) => (_dtype, _shape, _bytes) = (dtype, shape, bytes);

    /// <summary>The current contents of <paramref name="t"/>.</summary>
    public static TensorSnapshot Of(Tensor t) => new(t.dtype, t.shape, ReadBytes(t, out var bytes) ? bytes.ToArray() : CopyBytes(t));

    /// <summary>True when <paramref name="t"/> has the snapshot's dtype, shape and bytes.</summary>
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
