using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp;

/// <summary>
/// A LoRA or DoRA adapter around a <see cref="Linear"/> layer, computing exactly what PEFT's
/// <c>lora.Linear</c> (with <c>DoraLinearVariant</c> when <see cref="LoraConfig.UseDora"/>) computes.
/// State-dict keys: <c>weight</c>, <c>bias</c> (the base layer's, frozen), <c>lora_A.weight</c> (r, in),
/// <c>lora_B.weight</c> (out, r) and, for DoRA, <c>lora_magnitude_vector</c> (out).
/// Usable directly as a drop-in module when writing a model by hand.
/// </summary>
public sealed class LoraLinear : LoraLayer
{
    private readonly Linear lora_A;
    private readonly Linear lora_B;
    private readonly Dropout? lora_dropout;

    /// <summary>Wraps <paramref name="baseLayer"/>; its parameters are shared (not copied) and frozen.</summary>
    public LoraLinear(Linear baseLayer, LoraConfig config)
        : base(nameof(LoraLinear), baseLayer, baseLayer.weight ?? throw new ArgumentException("Linear has no weight"), baseLayer.bias, config)
    {
        InFeatures = baseLayer.in_features;
        OutFeatures = baseLayer.out_features;
        var w = baseLayer.weight!;
        // PEFT's autocast_adapter_dtype: adapters of a float16/bfloat16 base train in float32.
        var adapterType = DoraMath.NormDType(w.dtype);
        lora_A = nn.Linear(InFeatures, config.R, hasBias: false, device: w.device, dtype: adapterType);
        lora_B = nn.Linear(config.R, OutFeatures, hasBias: false, device: w.device, dtype: adapterType);
        LoraInitializer.InitLinearFactors(lora_A.weight!, lora_B.weight!, config);
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        if (config.LoraDropout > 0)
        {
            lora_dropout = nn.Dropout(config.LoraDropout);
            register_module("lora_dropout", lora_dropout);
        }
        if (config.UseDora) InitMagnitude(new[] { OutFeatures });
    }

    /// <summary>Input features of the base layer.</summary>
    public long InFeatures { get; }

    /// <summary>Output features of the base layer.</summary>
    public long OutFeatures { get; }

    /// <inheritdoc/>
    public override Parameter LoraA => lora_A.weight!;

    /// <inheritdoc/>
    public override Parameter LoraB => lora_B.weight!;

    /// <summary>Replaces dropout by a fixed function (tests reproduce PEFT's dropout with a recorded mask).</summary>
    internal Func<Tensor, Tensor>? DropoutOverride { get; set; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var weight = Weight;
        var bias = Bias;
        if (!AdapterEnabled || IsMerged) return F.linear(x, weight, bias);

        using var scope = NewDisposeScope();
        var xa = x.dtype == LoraA.dtype ? x : x.to(LoraA.dtype);
        var dropped = training && (DropoutOverride is not null || lora_dropout is not null);
        var xd = !dropped ? xa : DropoutOverride?.Invoke(xa) ?? lora_dropout!.call(xa);
        if (!UseDora)
        {
            var loraOut = lora_B.call(lora_A.call(xd));                          // (..., out)
            return scope.MoveToOuter(Cast(F.linear(x, weight, bias).add_(loraOut, alpha: Scaling), x.dtype));
        }

        if (!UseReferenceDora && !dropped && training && is_grad_enabled() && IsSmallLayer && SmallLayerPathEnabled
            && x.dtype == weight.dtype && LoraA.dtype == weight.dtype && Magnitude!.dtype == weight.dtype)
            return scope.MoveToOuter(SmallLayerTrainingForward(x, weight, bias));

        var norm = ForwardNorm();                                                         // (out), detached
        if (UseReferenceDora || dropped)
        {
            // PEFT's DoraLinearVariant.forward, term for term. With dropout PEFT keeps the full input in
            // base(x) and applies the magnitude correction to the dropped input x~, so W·x~ is computed too.
            var loraOut = lora_B.call(lora_A.call(xd));                          // (..., out)
            var scale = DoraMath.MagnitudeScale(Magnitude!, norm).to(loraOut.dtype);     // (out)
            var result = F.linear(x, weight, bias);                  // (..., out)
            var baseNoBias = dropped
                ? F.linear(xd, weight.to(xd.dtype))
                : (bias is null ? result : result.sub(bias)).to(loraOut.dtype);
            return scope.MoveToOuter(Cast(result.add(DoraMath.OutputCorrection(scale, baseNoBias, loraOut, Scaling)), x.dtype));
        }
        // Without dropout PEFT's base(x) + (m/n − 1)·W·x + (m/n)·s·B·A·x equals (m/n)·(W·x + s·B·A·x) + bias:
        // one fused autograd node (DoraLinearFunction) computes it with a hand-written backward.
        var x2 = xa.reshape(-1, InFeatures);                                               // (N, in)
        // Conversions only where the dtype differs: each .to() is a native call even when it changes nothing.
        var w = Cast(weight, xa.dtype);
        var b = bias is null ? null : Cast(bias, xa.dtype);
        var floored = DoraMath.FlooredNorm(norm);
        var m = Magnitude!;
        var output = is_grad_enabled() && (x2.requires_grad || LoraA.requires_grad || LoraB.requires_grad || m.requires_grad)
            ? DoraLinearFunction.Apply(x2, w, LoraA, LoraB, m, b, floored, Scaling)
            : DoraLinearFunction.Forward(x2, w, LoraA, LoraB, m, b, floored, Scaling);   // (N, out)
        return scope.MoveToOuter(Cast(output.reshape(OutputShape(x)), x.dtype));
    }

    /// <summary>False sends small layers through the fused node as well (tests check both against PEFT).</summary>
    internal bool SmallLayerPathEnabled { get; set; } = true;

    /// <summary>Layers whose W + s·B·A is cheaper to form than the factored norm's small ops (<see cref="FactoredNorm.DirectMaxElements"/>).</summary>
    private bool IsSmallLayer => InFeatures * OutFeatures <= FactoredNorm.DirectMaxElements;

    /// <summary>
    /// DoRA's training forward for small layers, where per-op dispatch, not arithmetic, is the cost (the demo MLP):
    /// V = W + s·B·A is formed once (differentiable in A and B), its row norm n is read from it detached (paper
    /// §4.3), and y = x·((m/n)⊙V)ᵀ + b — eight native calls with libtorch's own backward, instead of the factored
    /// norm and the hand-written node's managed backward. The same function as the fused path up to float rounding;
    /// n is <see cref="FactoredNorm.DirectRowNorm"/>'s (the one the magnitude is initialised with), so the output at
    /// initialisation is still the base layer's exactly.
    /// </summary>
    private Tensor SmallLayerTrainingForward(Tensor x, Tensor weight, Tensor? bias)
    {
        var sb = Scaling == 1 ? LoraB : LoraB.mul(Scaling);                                 // (out, r)
        var v = torch.addmm(weight, sb, LoraA, 1, 1);                                       // (out, in)
        Tensor norm;
        using (no_grad()) norm = DoraMath.FlooredNorm(linalg.vector_norm(v, ord: 2, dims: new long[] { 1 })); // (out)
        return F.linear(x, v.mul(Magnitude!.div(norm).unsqueeze(1)), bias);                 // (..., out)
    }

    private long[] OutputShape(Tensor x)
    {
        var shape = x.shape.ToArray();
        shape[^1] = OutFeatures;
        return shape;
    }

    private static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    /// <summary>n = ‖W + s·B·A‖ per row, the PEFT way (materialising B·A), detached.</summary>
    internal override Tensor ReferenceNorm()
    {
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var product = LoraMath.LowRankProduct(LoraA, LoraB);
        return scope.MoveToOuter(DoraMath.WeightNorm(Weight, product, Scaling));
    }

    /// <inheritdoc/>
    internal override Tensor FactoredDirectionNorm() => FactoredNorm.RowNorm(Weight, LoraA, LoraB, Scaling);

    /// <summary>
    /// The factored norm (docs/math.md eq. 11): no (out, in) temporary at construction, where PEFT's way makes two
    /// (B·A and W + s·B·A), and m equals the forward's n exactly at initialisation.
    /// </summary>
    protected override Tensor InitialNorm() => FactoredDirectionNorm();

    /// <inheritdoc/>
    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(LoraMath.DeltaWeight(LoraA, LoraB, Scaling).to(Weight.dtype));
    }

    /// <inheritdoc/>
    protected override Tensor DirectionNorm(Tensor weight, Tensor deltaWeight)
        => DoraMath.WeightNorm(weight, deltaWeight, 1.0);

    /// <inheritdoc/>
    protected override Tensor WeightScaleView(Tensor scale) => scale.unsqueeze(1); // (out, 1)

    /// <inheritdoc/>
    public override nn.Module<Tensor, Tensor> Unload()
    {
        var linear = (Linear)BaseLayer;
        // Hand over only parameters that .to() replaced while the base layer was out of the model.
        RebindParameter(linear, "weight", Weight);
        if (Bias is { } b) RebindParameter(linear, "bias", b);
        return linear;
    }
}
