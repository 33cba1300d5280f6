using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// The worked example's convolutional model, shaped like PyTorch's classic MNIST example: two 3 × 3 convolutions
/// (padding 1) each followed by ReLU and 2 × 2 max-pooling, then one Linear layer to the logits:
/// <code>
/// x (n, 784) → view (n, 1, 28, 28) → conv1 → ReLU → max-pool 2 → (n, c1, 14, 14)
///            → conv2 → ReLU → max-pool 2 → (n, c2, 7, 7) → flatten (n, c2·49) → fc → (n, 10)
/// </code>
/// The layers are fields named <c>conv1</c>, <c>conv2</c> and <c>fc</c>, as in a PyTorch module with those
/// attributes, so the state dict (<c>conv1.weight</c>, …) and adapter keys (<c>conv1.lora_A.weight</c>, …) are
/// PEFT's. Defaults c1 = 8 and c2 = 16 give 9,098 parameters.
/// </summary>
/// <remarks>
/// Training this model in float32 runs gradients through <c>conv2</c> to <c>conv1</c>, so the constructor runs
/// <see cref="ConvBackwardGuard.EnsureCorrect"/> (once per process; it uses its own random generator, never
/// torch's global one): on a CPU whose oneDNN computes wrong conv2d input gradients it switches oneDNN off
/// before anything trains (docs/known-issues.md).
/// </remarks>
public sealed class MnistCnn : MnistClassifier
{
    /// <summary>Side of the square input image, in pixels.</summary>
    public const int ImageSize = 28;

    /// <summary>The paths of the two Conv2d layers.</summary>
    public static IReadOnlyList<string> ConvLayers { get; } = ["conv1", "conv2"];

    /// <summary>
    /// The adapter targets of the worked example: both convolutions and the classifier <c>fc</c>. In the shift task
    /// the digits are turned 90°: the convolutions' features then appear at other places of the 7 × 7 map, and only
    /// <c>fc</c>, which weighs each place, can follow them there. Adapting the convolutions alone recovers almost
    /// nothing (docs/demo.md has the measurements).
    /// </summary>
    public static IReadOnlyList<string> AdapterTargets { get; } = ["conv1", "conv2", "fc"];

    // Named like a PyTorch module's attributes: RegisterComponents registers fields under their names. Declared
    // Module<Tensor, Tensor> so that LoraModel.Wrap can put an adapter in their place.
    private readonly Module<Tensor, Tensor> conv1;
    private readonly Module<Tensor, Tensor> conv2;
    private readonly Module<Tensor, Tensor> fc;

    /// <summary>Builds the model with PyTorch's default initialisation (from torch's global generator: seed it with torch.manual_seed).</summary>
    /// <exception cref="ConvBackendException">This CPU's float32 conv2d input gradient is wrong and could not be repaired.</exception>
    public MnistCnn(int channels1 = 8, int channels2 = 16, int classes = 10) : base(nameof(MnistCnn))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(channels1, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(channels2, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        ConvBackwardGuard.EnsureCorrect();
        Channels1 = channels1;
        Channels2 = channels2;
        Classes = classes;
        conv1 = Conv2d(1, channels1, 3, padding: 1);
        conv2 = Conv2d(channels1, channels2, 3, padding: 1);
        fc = Linear(FlatFeatures, classes);
        RegisterComponents();
    }

    /// <summary>Output channels of <c>conv1</c>.</summary>
    public int Channels1 { get; }

    /// <summary>Output channels of <c>conv2</c>.</summary>
    public int Channels2 { get; }

    /// <summary>Output logits, one per class.</summary>
    public int Classes { get; }

    /// <summary>Inputs of <c>fc</c>: conv2's channels × 7 × 7 (two halvings of 28).</summary>
    public int FlatFeatures => Channels2 * (ImageSize / 4) * (ImageSize / 4);

    /// <summary>Logits (n, classes) of images given flat (n, 784) or as (n, 1, 28, 28).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();                          // the intermediates are freed here, not by the GC
        var images = x.view(x.shape[0], 1, ImageSize, ImageSize);   // (n, 1, 28, 28)
        var h = F.max_pool2d(F.relu(conv1.call(images)), 2);       // (n, c1, 14, 14)
        h = F.max_pool2d(F.relu(conv2.call(h)), 2);                // (n, c2, 7, 7)
        return scope.MoveToOuter(fc.call(h.flatten(1)));           // (n, classes)
    }

    /// <inheritdoc/>
    public override MnistCnn Copy() => CopyInto(() => new MnistCnn(Channels1, Channels2, Classes));
}
