using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp;

/// <summary>
/// A LoRA or DoRA adapter around a <see cref="Linear"/> layer, computing exactly what PEFT's
/// <c>lora.Linear</c> computes: y = W·x + b + s·B·A·x~ (x~ the input after dropout). With
/// <see cref="LoraConfig.UseDora"/> the forward and merge are <see cref="DoraLinearVariant"/>'s (PEFT's <c>DoraLinearVariant</c>).
/// State-dict keys: <c>weight</c>, <c>bias</c> (the base layer's, frozen), <c>lora_A.weight</c> (r, in),
/// <c>lora_B.weight</c> (out, r) and, for DoRA, <c>lora_magnitude_vector</c> (out).
/// Usable directly as a drop-in module when writing a model by hand.
/// </summary>
public sealed class LoraLinear : LoraLayer
{
    private readonly Linear lora_A;
    private readonly Linear lora_B;

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
        AddDropout(config.LoraDropout);
        InitVariant();
    }

    /// <summary>Input features of the base layer.</summary>
    public long InFeatures { get; }

    /// <summary>Output features of the base layer.</summary>
    public long OutFeatures { get; }

    /// <inheritdoc/>
    public override Parameter LoraA => lora_A.weight!;

    /// <inheritdoc/>
    public override Parameter LoraB => lora_B.weight!;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var weight = Weight;
        var bias = Bias;
        if (!AdapterEnabled || IsMerged) return F.linear(x, weight, bias);
        if (Variant is not null) return Variant.Forward(this, x);

        using var scope = NewDisposeScope();
        var xa = AdapterInput(x);
        var xd = DropoutActive ? ApplyDropout(xa) : xa;
        var loraOut = LoraOutput(xd);                                                      // (..., out)
        return scope.MoveToOuter(Cast(F.linear(x, weight, bias).add_(loraOut, alpha: Scaling), x.dtype));
    }

    /// <summary>B(A(x~)): the unscaled LoRA output for the adapter input x~ (after dropout), (..., out).</summary>
    internal Tensor LoraOutput(Tensor xd) => lora_B.call(lora_A.call(xd));

    /// <inheritdoc/>
    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        return scope.MoveToOuter(LoraMath.DeltaWeight(LoraA, LoraB, Scaling).to(Weight.dtype));
    }

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
