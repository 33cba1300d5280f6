using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// DoRA for a <see cref="LoraConv2d"/>, computing what PEFT's <c>DoraConv2dVariant</c> (<c>_DoraConvNdLayer</c>)
/// computes: one magnitude per output channel, of PEFT's shape (1, out, 1, 1), and n = ‖W + ΔW‖ over (in, kh, kw).
/// </summary>
internal sealed class DoraConv2dVariant : DoraVariant
{
    /// <inheritdoc/>
    protected override long[] MagnitudeShape(LoraLayer layer) => new[] { 1, ((LoraConv2d)layer).OutChannels, 1, 1 };

    /// <inheritdoc/>
    protected override Tensor WeightScaleView(Tensor scale) => scale.view(-1, 1, 1, 1); // (out, 1, 1, 1)

    /// <summary>
    /// n per output channel as PEFT's <c>_DoraConvNdLayer</c> computes it: lora_weight = B.view(out, r) @
    /// A.view(r, −1) reshaped to W's shape, then ‖W + s·lora_weight‖ over (in, kh, kw). Detached.
    /// </summary>
    protected override Tensor ReferenceRowNorm(LoraLayer layer)
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var weight = layer.Weight;
        var dtype = DoraMath.NormDType(weight.dtype);
        var r = layer.LoraA.shape[0];
        var loraWeight = layer.LoraB.to(dtype).view(-1, r).mm(layer.LoraA.to(dtype).view(r, -1)).reshape(weight.shape);
        var v = weight.to(dtype).add(loraWeight, alpha: layer.Scaling);                  // (out, in, kh, kw)
        return scope.MoveToOuter(DoraRowNorm.Of(v));
    }

    /// <summary>W flattened to (out, in·kh·kw) with A (r, in·kh·kw) and B (out, r) is the Linear case.</summary>
    protected override Tensor FactoredRowNorm(LoraLayer layer)
    {
        using var scope = NewDisposeScope();
        var r = layer.LoraA.shape[0];
        var outChannels = ((LoraConv2d)layer).OutChannels;
        return scope.MoveToOuter(DoraRowNorm.Factored(layer.Weight.reshape(outChannels, -1), layer.LoraA.reshape(r, -1), layer.LoraB.reshape(-1, r), layer.Scaling));
    }

    /// <inheritdoc/>
    protected override Tensor RowNorm(Tensor weight, Tensor delta)
    {
        using var scope = NewDisposeScope();
        var dtype = DoraMath.NormDType(weight.dtype);
        var v = weight.to(dtype).add(delta.to(dtype));                                   // (out, in, kh, kw)
        return scope.MoveToOuter(DoraRowNorm.Of(v));                                     // (out)
    }

    /// <inheritdoc/>
    public override Tensor Forward(LoraLayer layer, Tensor x)
    {
        var conv = (LoraConv2d)layer;
        var weight = layer.Weight;
        var bias = layer.Bias;
        using var scope = NewDisposeScope();
        var xa = layer.AdapterInput(x);
        var dropped = layer.DropoutActive;
        var xd = !dropped ? xa : layer.ApplyDropout(xa);
        var loraOut = conv.LoraOutput(xd);                                               // (N, out, H', W')

        var norm = ForwardRowNorm(layer);                                                // (out), detached
        var scale = DoraMath.MagnitudeScale(Magnitude(layer).reshape(-1), norm).to(loraOut.dtype).view(1, -1, 1, 1);
        if (layer.UseReferenceDora || dropped)
        {
            // PEFT's _DoraConvNdLayer.forward, term for term: base(x) + (m/n − 1)·conv(x~, W) + (m/n)·s·B(A(x~)),
            // where without dropout conv(x, W) is the base output less its bias.
            var result = conv.BaseConv(x, weight, bias);                                 // (N, out, H', W')
            var baseNoBias = dropped
                ? conv.BaseConv(xd, weight.to(xd.dtype), null)
                : (bias is null ? result : result.sub(bias.view(1, -1, 1, 1))).to(loraOut.dtype);
            return scope.MoveToOuter(LoraLayer.Cast(result.add(DoraMath.OutputCorrection(scale, baseNoBias, loraOut, layer.Scaling)), x.dtype));
        }
        // Without dropout that equals (m/n)·(conv(x, W) + s·B(A(x))) + bias: one convolution with W, fewer passes.
        var directed = conv.BaseConv(xa, weight.to(xa.dtype), null).add_(loraOut, alpha: layer.Scaling);
        var output = directed.mul(scale);
        if (bias is not null) output.add_(bias.view(1, -1, 1, 1));
        return scope.MoveToOuter(LoraLayer.Cast(output, x.dtype));
    }
}
