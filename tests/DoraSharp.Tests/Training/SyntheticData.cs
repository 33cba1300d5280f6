using DoraSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Training;

/// <summary>Small in-memory splits for trainer tests.</summary>
internal static class SyntheticData
{
    /// <summary>
    /// <paramref name="count"/> examples of <paramref name="features"/> normal features, labelled by which of the
    /// first three features is largest (a problem a linear layer can learn). Feature 0 is overwritten by
    /// nothing; callers that need to identify examples use <see cref="Indexed"/>.
    /// </summary>
    public static LabelledTensors Separable(int count, int features = 4, long seed = 5)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator((ulong)seed);
        var x = randn(count, features, generator: generator);
        var y = x.narrow(1, 0, 3).argmax(1);
        return new LabelledTensors(x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope(), "synthetic");
    }

    /// <summary>Like <see cref="Separable"/>, but feature 0 of example i is i, so a model can tell which examples it saw.</summary>
    public static LabelledTensors Indexed(int count, int features = 4)
    {
        using var scope = NewDisposeScope();
        var generator = new Generator(3);
        var x = randn(count, features, generator: generator);
        x[TensorIndex.Colon, 0] = arange(count, dtype: ScalarType.Float32);
        var y = x.narrow(1, 1, 3).argmax(1);
        return new LabelledTensors(x.MoveToOuterDisposeScope(), y.MoveToOuterDisposeScope(), "synthetic, indexed");
    }
}

/// <summary>
/// The smallest <see cref="IClassificationData"/>: two tensors, owned (the trainer needs nothing else, and these tests
/// depend on no data set of the worked example).
/// </summary>
internal sealed class LabelledTensors(Tensor inputs, Tensor labels, string source) : IClassificationData, IDisposable
{
    public Tensor Inputs { get; } = inputs;

    public Tensor Labels { get; } = labels;

    public int Count { get; } = (int)labels.shape[0];

    public string Source { get; } = source;

    public void Dispose()
    {
        Inputs.Dispose();
        Labels.Dispose();
    }
}

/// <summary>A linear classifier that records feature 0 of every training batch it is called on.</summary>
internal sealed class RecordingModel : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> linear;

    public RecordingModel(int features = 4, int classes = 3) : base(nameof(RecordingModel))
    {
        linear = nn.Linear(features, classes);
        RegisterComponents();
    }

    /// <summary>Feature 0 of each training batch, one array per call.</summary>
    public List<int[]> Batches { get; } = [];

    public override Tensor forward(Tensor x)
    {
        if (training) Batches.Add(x.select(1, 0).data<float>().Select(v => (int)v).ToArray());
        // Feature 0 is an index, not a feature: leave it out of what the layer sees.
        using var scope = NewDisposeScope();
        var features = x.clone();
        features[TensorIndex.Colon, 0] = 0;
        return scope.MoveToOuter(linear.call(features));
    }
}
