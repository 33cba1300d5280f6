using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// The worked example's default model: a multilayer perceptron 784 → hidden1 → hidden2 → 10 with ReLU, built as
/// PyTorch's <c>nn.Sequential</c> in a field named <c>layers</c>, so its Linear modules are <c>layers.0</c>,
/// <c>layers.2</c> and <c>layers.4</c> and its state dict and adapter keys match the PyTorch original
/// (<c>layers.0.weight</c>, <c>layers.0.lora_A.weight</c>, …). Defaults 32 and 64 are the original recipe's
/// (27,882 parameters).
/// </summary>
public sealed class MnistMlp : MnistClassifier
{
    /// <summary>The paths of the three Linear layers, the adapter targets of the worked example.</summary>
    public static IReadOnlyList<string> LinearLayers { get; } = ["layers.0", "layers.2", "layers.4"];

    // Named like the PyTorch original's attribute: RegisterComponents registers fields under their names.
    private readonly Module<Tensor, Tensor> layers;

    /// <summary>Builds the model with PyTorch's default initialisation (from torch's global generator: seed it with torch.manual_seed).</summary>
    public MnistMlp(int inputs = 784, int hidden1 = 32, int hidden2 = 64, int classes = 10) : base(nameof(MnistMlp))
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputs, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden1, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(hidden2, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(classes, 1);
        Inputs = inputs;
        Hidden1 = hidden1;
        Hidden2 = hidden2;
        Classes = classes;
        layers = Sequential(Linear(inputs, hidden1), ReLU(), Linear(hidden1, hidden2), ReLU(), Linear(hidden2, classes));
        RegisterComponents();
    }

    /// <summary>Input features (784 for 28 × 28 images).</summary>
    public int Inputs { get; }

    /// <summary>Width of the first hidden layer.</summary>
    public int Hidden1 { get; }

    /// <summary>Width of the second hidden layer.</summary>
    public int Hidden2 { get; }

    /// <summary>Output logits, one per class.</summary>
    public int Classes { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x) => layers.call(x);

    /// <inheritdoc/>
    public override MnistMlp Copy() => CopyInto(() => new MnistMlp(Inputs, Hidden1, Hidden2, Classes));
}
