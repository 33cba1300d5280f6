using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.Tests.IO;

/// <summary>
/// PyTorch's <c>nn.Sequential(Linear, ReLU, Linear, ReLU, …, Linear)</c> held in a field named <c>layers</c>, so its
/// Linear layers are <c>layers.0</c>, <c>layers.2</c>, … — the golden README's MLP for any widths.
/// </summary>
internal sealed class SequentialMlp : Module<Tensor, Tensor>
{
    private readonly Module<Tensor, Tensor> layers;

    /// <param name="widths">Input width, then each Linear layer's output width.</param>
    /// <param name="dtype">The parameters' dtype.</param>
    public SequentialMlp(IReadOnlyList<long> widths, ScalarType dtype = ScalarType.Float32) : base(nameof(SequentialMlp))
    {
        if (widths.Count < 2) throw new ArgumentException("An MLP needs an input width and at least one layer.", nameof(widths));
        var modules = new List<(string, Module<Tensor, Tensor>)>();
        for (int i = 0; i + 1 < widths.Count; i++)
        {
            if (i > 0) modules.Add(((2 * i - 1).ToString(), ReLU()));
            modules.Add(((2 * i).ToString(), Linear(widths[i], widths[i + 1], dtype: dtype)));
        }
        layers = Sequential(modules.ToArray());
        RegisterComponents();
        Widths = widths.ToArray();
    }

    /// <summary>The widths the model was built with.</summary>
    public long[] Widths { get; }

    public override Tensor forward(Tensor x) => layers.call(x);

    /// <summary>
    /// The MLP whose <c>state_dict</c> a base weights file holds: Linear layers <c>layers.0</c>, <c>layers.2</c>, … read
    /// from the file's <c>layers.&lt;i&gt;.weight</c> shapes (out, in), with ReLU between (read with the tests' own reader,
    /// not the code under test).
    /// </summary>
    public static SequentialMlp ShapedLike(string baseWeightsPath)
    {
        var tensors = SafetensorsReader.Read(baseWeightsPath);
        try
        {
            var widths = new List<long>();
            ScalarType dtype = ScalarType.Float32;
            for (int i = 0; tensors.TryGetValue($"layers.{i}.weight", out var weight); i += 2)
            {
                if (widths.Count == 0) { widths.Add(weight.shape[1]); dtype = weight.dtype; }
                else if (widths[^1] != weight.shape[1]) throw new InvalidDataException($"{baseWeightsPath}: layers.{i}.weight has {weight.shape[1]} inputs, but the previous layer has {widths[^1]} outputs");
                widths.Add(weight.shape[0]);
            }
            if (widths.Count < 2) throw new InvalidDataException($"{baseWeightsPath}: no 'layers.0.weight'; expected the state dict of nn.Sequential(Linear, ReLU, ...) in a field named 'layers'");
            return new SequentialMlp(widths, dtype);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
