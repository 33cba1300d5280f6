using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp;

/// <summary>
/// A LoRA or DoRA adapter around a <see cref="Conv2d"/> layer, computing what PEFT's <c>lora.Conv2d</c>
/// (with <c>DoraConv2dVariant</c> when <see cref="LoraConfig.UseDora"/>) computes. As in PEFT, <c>lora_A</c> is a
/// convolution with the base layer's kernel, stride and padding (r output channels, no bias) and <c>lora_B</c> a
/// 1×1 convolution (r → out, no bias), so y = base(x) + s·B(A(x)) and ΔW = s·(B·A) reshaped to W's shape.
/// With <see cref="LoraConfig.UseDora"/> the forward and merge are <see cref="DoraConv2dVariant"/>'s: one magnitude
/// per output channel, of PEFT's shape (1, out, 1, 1), and the norm of W + ΔW over (in, kh, kw).
/// State-dict keys: <c>weight</c>, <c>bias</c> (the base layer's, frozen), <c>lora_A.weight</c> (r, in, kh, kw),
/// <c>lora_B.weight</c> (out, r, 1, 1) and, for DoRA, <c>lora_magnitude_vector</c> (1, out, 1, 1).
/// <para>Refused with an <see cref="AdapterInjectionException"/>, because PEFT's own adapter would not match
/// its base layer: groups ≠ 1 (PEFT cannot merge those), a dilation ≠ 1 with a kernel larger than 1×1
/// (PEFT builds lora_A without the dilation) and a padding mode other than zeros (PEFT's lora_A always pads
/// with zeros). Float32 training on some CPUs needs <see cref="ConvBackwardGuard"/>, which the constructor runs
/// (docs/known-issues.md).</para>
/// </summary>
public sealed class LoraConv2d : LoraLayer
{
    private readonly Conv2d lora_A;
    private readonly Conv2d lora_B;
    private readonly long[] _stride, _dilation;
    private readonly long[]? _padding;
    private readonly Padding? _paddingType;

    /// <summary>Wraps <paramref name="baseLayer"/>; its parameters are shared (not copied) and frozen.</summary>
    /// <exception cref="AdapterInjectionException">The convolution has groups, dilation or a padding mode PEFT's adapter cannot follow.</exception>
    /// <exception cref="ConvBackendException">This CPU's float32 conv2d input gradient is wrong and could not be repaired.</exception>
    public LoraConv2d(Conv2d baseLayer, LoraConfig config)
        : base(nameof(LoraConv2d), baseLayer, Supported(baseLayer).weight, baseLayer.bias, config)
    {
        InChannels = baseLayer.in_channels;
        OutChannels = baseLayer.out_channels;
        KernelSize = (long[])baseLayer.kernel_size.Clone();
        _stride = (long[])baseLayer.stride.Clone();
        _dilation = (long[])baseLayer.dilation.Clone();
        _padding = (long[]?)baseLayer.padding?.Clone();
        _paddingType = baseLayer.padding_type;

        var w = Weight;
        // PEFT's autocast_adapter_dtype: adapters of a float16/bfloat16 base train in float32.
        var adapterType = DoraMath.NormDType(w.dtype);
        var kernel = (KernelSize[0], KernelSize[1]);
        var stride = (_stride[0], _stride[1]);
        // PEFT: conv_layer(in, r, kernel_size, stride, padding, bias=False) — dilation 1, groups 1, zero padding.
        lora_A = _paddingType is { } type
            ? nn.Conv2d(InChannels, config.R, kernel, type, stride, bias: false, device: w.device, dtype: adapterType)
            : nn.Conv2d(InChannels, config.R, kernel, stride, (_padding![0], _padding[1]), bias: false, device: w.device, dtype: adapterType);
        lora_B = nn.Conv2d(config.R, OutChannels, (1, 1), bias: false, device: w.device, dtype: adapterType);
        LoraInitializer.InitLinearFactors(lora_A.weight, lora_B.weight, config);
        register_module("lora_A", lora_A);
        register_module("lora_B", lora_B);
        AddDropout(config.LoraDropout);
        InitVariant();
    }

    /// <summary>Input channels of the base layer.</summary>
    public long InChannels { get; }

    /// <summary>Output channels of the base layer (the DoRA magnitude has one entry per channel).</summary>
    public long OutChannels { get; }

    /// <summary>Kernel size (kh, kw) of the base layer.</summary>
    public IReadOnlyList<long> KernelSize { get; }

    /// <inheritdoc/>
    public override Parameter LoraA => lora_A.weight;

    /// <inheritdoc/>
    public override Parameter LoraB => lora_B.weight;

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        var weight = Weight;
        var bias = Bias;
        if (!AdapterEnabled || IsMerged) return BaseConv(x, weight, bias);
        if (x.dim() == 3)
        {
            // An unbatched (C, H, W) input: PEFT's DoRA would broadcast it to (1, out, H', W'); keep it unbatched.
            using var batched = x.unsqueeze(0);
            using var y = forward(batched);
            return y.squeeze(0);
        }
        if (Variant is not null) return Variant.Forward(this, x);

        using var scope = NewDisposeScope();
        var xa = AdapterInput(x);
        var xd = DropoutActive ? ApplyDropout(xa) : xa;
        var loraOut = LoraOutput(xd);                                    // (N, out, H', W')
        return scope.MoveToOuter(Cast(BaseConv(x, weight, bias).add_(loraOut.mul(Scaling)), x.dtype));
    }

    /// <summary>B(A(x~)): the unscaled LoRA output for the adapter input x~ (after dropout), (N, out, H', W').</summary>
    internal Tensor LoraOutput(Tensor xd) => lora_B.call(lora_A.call(xd));

    /// <summary>The base layer's convolution with the given weight and bias (zero padding, see the class remarks).</summary>
    internal Tensor BaseConv(Tensor x, Tensor weight, Tensor? bias)
        => _paddingType is { } type
            ? F.conv2d_padding(x, weight, bias, _stride, type, _dilation)
            : F.conv2d(x, weight, bias, _stride, _padding, _dilation);

    /// <summary>
    /// PEFT's <c>_ConvNd.get_delta_weight</c>: for a 1×1 kernel s·(B·A) as a matrix product; otherwise
    /// s·conv2d(Aᵀ, B)ᵀ (A with its first two axes swapped, convolved with B, swapped back), the same sums.
    /// Shape (out, in, kh, kw), in W's dtype.
    /// </summary>
    public override Tensor DeltaWeight()
    {
        using var scope = NewDisposeScope();
        var a = LoraA;
        var b = LoraB;
        Tensor delta;
        if (KernelSize[0] == 1 && KernelSize[1] == 1)
            delta = b.squeeze(3).squeeze(2).matmul(a.squeeze(3).squeeze(2)).unsqueeze(2).unsqueeze(3).mul_(Scaling);
        else
            delta = F.conv2d(a.transpose(0, 1), b).transpose(0, 1).mul(Scaling);          // (out, in, kh, kw)
        return scope.MoveToOuter(delta.to(Weight.dtype).contiguous());
    }

    /// <inheritdoc/>
    public override nn.Module<Tensor, Tensor> Unload()
    {
        var conv = (Conv2d)BaseLayer;
        // Hand over only parameters that .to() replaced while the base layer was out of the model.
        RebindParameter(conv, "weight", Weight);
        if (Bias is { } b) RebindParameter(conv, "bias", b);
        return conv;
    }

    private static Conv2d Supported(Conv2d conv)
    {
        ArgumentNullException.ThrowIfNull(conv);
        if (conv.groups != 1)
            throw new AdapterInjectionException(
                $"Cannot adapt a Conv2d with groups = {conv.groups}: PEFT cannot merge such an adapter and builds lora_A without the groups. " +
                "Only groups = 1 is supported.");
        var pointwise = conv.kernel_size.All(k => k == 1);
        if (!pointwise && conv.dilation.Any(d => d != 1))
            throw new AdapterInjectionException(
                $"Cannot adapt a Conv2d with dilation ({string.Join(", ", conv.dilation)}): PEFT builds lora_A without the base layer's dilation, " +
                "so its update would not line up with the base convolution. Only dilation 1 is supported for kernels larger than 1x1.");
        var padded = conv.padding_type == Padding.Same || (conv.padding?.Any(p => p != 0) ?? false);
        if (padded && conv.padding_mode != PaddingModes.Zeros)
            throw new AdapterInjectionException(
                $"Cannot adapt a Conv2d with padding mode {conv.padding_mode}: PEFT's lora_A always pads with zeros, so its adapter " +
                "and merged weight would disagree at the borders. Only PaddingModes.Zeros is supported.");
        // Before the base parameters are frozen: a refusal leaves the layer untouched.
        ConvBackwardGuard.EnsureCorrect();
        return conv;
    }
}
