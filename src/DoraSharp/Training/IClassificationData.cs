using static TorchSharp.torch;

namespace DoraSharp.Training;

/// <summary>
/// Labelled examples for a <see cref="Trainer"/> to learn from and an <see cref="Evaluator"/> to score: one row of
/// <see cref="Inputs"/> per example and its class in <see cref="Labels"/>. Anything that holds its examples as two
/// tensors can implement it (the worked example's MNIST split does); the training loop picks rows by index and never
/// needs to know what the inputs are.
/// </summary>
/// <remarks>
/// The tensors stay the implementer's: the trainer and the evaluator read them (<c>index_select</c>, <c>narrow</c>
/// along dimension 0) and never dispose or change them.
/// </remarks>
public interface IClassificationData
{
    /// <summary>The inputs, one example per row along dimension 0: [<see cref="Count"/>, …], in the shape and dtype the model takes.</summary>
    Tensor Inputs { get; }

    /// <summary>The class of each example, int64 of shape [<see cref="Count"/>], each in 0 … classes − 1 (cross-entropy targets).</summary>
    Tensor Labels { get; }

    /// <summary>The number of examples: the size of dimension 0 of <see cref="Inputs"/> and <see cref="Labels"/>.</summary>
    int Count { get; }

    /// <summary>Where the examples came from, in a few words; messages about the data (an empty split, say) quote it.</summary>
    string Source { get; }
}
