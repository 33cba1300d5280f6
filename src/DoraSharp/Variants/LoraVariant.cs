using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The extension point for LoRA variants, PEFT's <c>LoraVariant</c> (<c>tuners/lora/variants.py</c>): a variant
/// changes what an adapter layer computes without forking the layer. The layer keeps the base weight, the factors
/// A and B and the plain LoRA computation; when a variant is attached (<see cref="LoraVariants.For"/>) the layer
/// hands it these four jobs:
/// <list type="bullet">
/// <item><see cref="Init"/>: create the variant's own parameters on the layer (PEFT's <c>init</c>);</item>
/// <item><see cref="MergedWeight"/>: the weight a merge writes (PEFT's <c>merge_safe</c>);</item>
/// <item><see cref="UnmergedWeight"/>: the base weight recovered from a merged one (PEFT's <c>unmerge</c>);</item>
/// <item><see cref="Forward"/>: the adapted output (PEFT's <c>forward</c>).</item>
/// </list>
/// A variant instance belongs to one layer. Plain LoRA has no variant (the layer's own computation).
/// </summary>
internal abstract class LoraVariant : IDisposable
{
    /// <summary>
    /// Creates the variant's parameters on <paramref name="layer"/>, after its factors (so they follow them in the
    /// state dict, as in PEFT's files).
    /// </summary>
    public abstract void Init(LoraLayer layer);

    /// <summary>
    /// The merged weight, in W's layout and dtype, from W and the layer's ΔW = s·B·A, plus what
    /// <see cref="UnmergedWeight"/> will need to undo the merge exactly (null if nothing). Runs under no_grad; the
    /// layer owns the returned tensors.
    /// </summary>
    public abstract (Tensor Merged, Tensor? UnmergeState) MergedWeight(LoraLayer layer, Tensor weight, Tensor delta);

    /// <summary>
    /// The base weight recovered from the merged <paramref name="weight"/>, given ΔW and the state
    /// <see cref="MergedWeight"/> returned. Runs under no_grad.
    /// </summary>
    /// <exception cref="InvalidOperationException">The merge cannot be undone.</exception>
    public abstract Tensor UnmergedWeight(LoraLayer layer, Tensor weight, Tensor delta, Tensor? unmergeState);

    /// <summary>The adapted output for input <paramref name="x"/> of an enabled, unmerged layer.</summary>
    public abstract Tensor Forward(LoraLayer layer, Tensor x);

    /// <summary>Drops whatever the variant derived from W, A or B (they changed, or the layer is being disposed).</summary>
    public virtual void InvalidateCache() { }

    /// <summary>Frees the variant's own tensors (not the layer's parameters, which the layer disposes).</summary>
    public void Dispose() => InvalidateCache();
}
