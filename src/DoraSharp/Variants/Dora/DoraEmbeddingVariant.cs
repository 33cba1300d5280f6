using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// DoRA for a <see cref="LoraEmbedding"/>, computing what PEFT's <c>DoraEmbeddingVariant</c> computes:
/// <code>y = (m/n) · W[x] + (m/n) · s · (Aᵀ[x] @ Bᵀ),   n_j = ‖column j of W + s·(B·A)ᵀ‖ over the vocabulary</code>
/// with one magnitude per embedding dimension.
/// </summary>
internal sealed class DoraEmbeddingVariant : DoraVariant
{
    /// <inheritdoc/>
    protected override long[] MagnitudeShape(LoraLayer layer) => new[] { ((LoraEmbedding)layer).EmbeddingDim };

    /// <inheritdoc/>
    protected override Tensor WeightScaleView(Tensor scale) => scale.unsqueeze(0); // (1, dim)

    /// <summary>
    /// n per embedding dimension as PEFT's <c>get_weight_norm</c> computes it (fan_in_fan_out=True):
    /// ‖Wᵀ + s·(Aᵀ @ Bᵀ)ᵀ‖ over the vocabulary, materialising the (num, dim) product. Detached.
    /// </summary>
    protected override Tensor ReferenceRowNorm(LoraLayer layer)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var weight = layer.Weight;
        var dtype = DoraMath.NormDType(weight.dtype);
        var loraWeight = layer.LoraA.t().to(dtype).matmul(layer.LoraB.t().to(dtype)).t();  // (dim, num)
        var v = weight.t().to(dtype).add(loraWeight, alpha: layer.Scaling);                 // (dim, num)
        return scope.MoveToOuter(DoraRowNorm.Of(v));
    }

    /// <summary>The embedding norm is the Linear row norm of Wᵀ (dim, num) with A (r, num) and B (dim, r).</summary>
    protected override Tensor FactoredRowNorm(LoraLayer layer) => DoraRowNorm.Factored(layer.Weight.t(), layer.LoraA, layer.LoraB, layer.Scaling);

    /// <summary>Per embedding dimension: the norm of each column of W + ΔW, i.e. of each row of its transpose.</summary>
    protected override Tensor RowNorm(Tensor weight, Tensor delta)
    {
        using var scope = NewDisposeScope();
        var dtype = DoraMath.NormDType(weight.dtype);
        var v = weight.to(dtype).add(delta.to(dtype));                                      // (num, dim)
        return scope.MoveToOuter(DoraRowNorm.Of(v.t()));                                    // (dim)
    }

    /// <summary>PEFT's DoraEmbeddingLayer.forward and DoraEmbeddingVariant.forward, in their order of operations.</summary>
    public override Tensor Forward(LoraLayer layer, Tensor x)
    {
        var embedding = (LoraEmbedding)layer;
        using var scope = NewDisposeScope();
        var result = embedding.BaseLookup(x);                                               // (..., dim)  base(x)
        var loraOut = embedding.LoraOutput(x);                                              // (..., dim)
        // dora = (m/n)·(Aᵀ[x] @ Bᵀ)·s; y = (m/n)·base(x) + dora.
        var scale = DoraMath.MagnitudeScale(Magnitude(layer), ForwardRowNorm(layer)).to(loraOut.dtype);   // (dim)
        var dora = scale.mul(loraOut).mul_(layer.Scaling);
        var output = scale.mul(result).add_(dora);
        return scope.MoveToOuter(output.dtype == result.dtype ? output : output.to(result.dtype));
    }
}
