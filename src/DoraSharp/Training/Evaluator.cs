using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Training;

/// <summary>Measures a classifier's accuracy on a whole split.</summary>
public static class Evaluator
{
    /// <summary>
    /// Scores every example of <paramref name="split"/> in eval mode without gradients, batch by batch, and
    /// returns the number correct and the number scored (which equals <see cref="IClassificationData.Count"/>: the
    /// whole split, never just its first batch). The model's train/eval mode is restored afterwards.
    /// </summary>
    /// <param name="model">Maps a batch of inputs (rows of <see cref="IClassificationData.Inputs"/>) to [n, classes] logits.</param>
    /// <param name="split">The examples to score.</param>
    /// <param name="batchSize">Examples per forward pass (memory only: the result does not depend on it).</param>
    public static EvaluationResult Evaluate(nn.Module<Tensor, Tensor> model, IClassificationData split, int batchSize = 1000)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(split);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        if (split.Count == 0) throw new ArgumentException($"The split ({split.Source}) is empty: there is nothing to evaluate.", nameof(split));
        long correct = 0, count = 0;
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            for (var start = 0; start < split.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var n = System.Math.Min(batchSize, split.Count - start);
                var predicted = model.call(split.Inputs.narrow(0, start, n)).argmax(1);
                correct += predicted.eq(split.Labels.narrow(0, start, n)).sum().item<long>();
                count += predicted.shape[0];
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return new EvaluationResult(correct, count);
    }
}
