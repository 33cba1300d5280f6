using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// The plain training and evaluation loops of the MiniLM example: AdamW, cross-entropy, constant learning rates,
/// a seeded shuffle each epoch, one dispose scope per step. Everything is deterministic given the global torch
/// seed and <c>shuffleSeed</c> (libtorch's CPU kernels are deterministic for a fixed thread count).
/// </summary>
public static class ClassifierTraining
{
    /// <summary>Optimizer steps per epoch for <paramref name="examples"/> examples in batches of <paramref name="batchSize"/> (the last batch may be short).</summary>
    public static int StepsPerEpoch(int examples, int batchSize) => (examples + batchSize - 1) / batchSize;

    /// <summary>
    /// Trains <paramref name="model"/> in train mode (dropout on) on <paramref name="train"/>, stepping each optimizer
    /// of <paramref name="optimizers"/> after every batch. <paramref name="onStep"/> gets the steps done and the
    /// mean loss of the current epoch so far. Returns the mean loss of the last epoch.
    /// </summary>
    public static double Train(
        SentenceClassifier model, EncodedExamples train, IReadOnlyList<optim.Optimizer> optimizers,
        int epochs, int batchSize, int shuffleSeed, Action<int, double>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(train);
        ArgumentNullException.ThrowIfNull(optimizers);
        model.train();
        return Loop(train.Count, epochs, batchSize, shuffleSeed, optimizers, onStep, batch =>
        {
            var (ids, mask, types, labels) = train.Batch(batch);
            return nn.functional.cross_entropy(model.call(ids, mask, types), labels);
        });
    }

    /// <summary>
    /// Trains <paramref name="head"/> alone on fixed <paramref name="features"/> <c>(N, C)</c> with class indices
    /// <paramref name="labels"/> <c>(N)</c> (the frozen-encoder baseline), same loop as <see cref="Train"/>.
    /// </summary>
    public static double TrainHead(
        nn.Module<Tensor, Tensor> head, Tensor features, Tensor labels, optim.Optimizer optimizer,
        int epochs, int batchSize, int shuffleSeed, Action<int, double>? onStep = null)
    {
        ArgumentNullException.ThrowIfNull(head);
        head.train();
        return Loop((int)features.shape[0], epochs, batchSize, shuffleSeed, [optimizer], onStep, batch =>
        {
            var index = tensor(batch.Select(i => (long)i).ToArray());
            return nn.functional.cross_entropy(head.call(features.index_select(0, index)), labels.index_select(0, index));
        });
    }

    private static double Loop(
        int count, int epochs, int batchSize, int shuffleSeed, IReadOnlyList<optim.Optimizer> optimizers,
        Action<int, double>? onStep, Func<int[], Tensor> loss)
    {
        if (count < 1) throw new ArgumentException("ClassifierTraining: no training examples.");
        if (epochs < 1 || batchSize < 1)
            throw new ArgumentOutOfRangeException(nameof(epochs), $"ClassifierTraining: epochs ({epochs}) and batch size ({batchSize}) must be >= 1.");
        var random = new Random(shuffleSeed);
        var order = Enumerable.Range(0, count).ToArray();
        int step = 0;
        double epochLoss = double.NaN;
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            random.Shuffle(order);
            double sum = 0;
            int batches = 0;
            foreach (var batch in order.Chunk(batchSize))
            {
                using var scope = NewDisposeScope();
                foreach (var o in optimizers) o.zero_grad();
                var value = loss(batch);
                value.backward();
                foreach (var o in optimizers) o.step();
                sum += value.item<float>();
                batches++;
                step++;
                onStep?.Invoke(step, sum / batches);
            }
            epochLoss = sum / batches;
        }
        if (!double.IsFinite(epochLoss))
            throw new InvalidOperationException($"ClassifierTraining: the training loss is {epochLoss}; lower the learning rate.");
        return epochLoss;
    }

    /// <summary>
    /// Number of <paramref name="examples"/> that <paramref name="model"/> (switched to eval mode) classifies
    /// correctly, in batches of <paramref name="batchSize"/>; <paramref name="onBatch"/> gets the batches done.
    /// </summary>
    public static int CountCorrect(SentenceClassifier model, EncodedExamples examples, int batchSize, Action<int>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(examples);
        model.eval();
        using var noGrad = no_grad();
        int correct = 0, done = 0;
        foreach (var batch in Enumerable.Range(0, examples.Count).Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var (ids, mask, types, labels) = examples.Batch(batch);
            correct += (int)model.call(ids, mask, types).argmax(1).eq(labels).sum().item<long>();
            onBatch?.Invoke(++done);
        }
        return correct;
    }

    /// <summary>Number of rows of <paramref name="features"/> that <paramref name="head"/> (eval mode) assigns to <paramref name="labels"/>.</summary>
    public static int CountCorrect(nn.Module<Tensor, Tensor> head, Tensor features, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(head);
        head.eval();
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        return (int)head.call(features).argmax(1).eq(labels).sum().item<long>();
    }

    /// <summary>
    /// The mean-pooled embeddings <c>(N, C)</c> of <paramref name="examples"/> under <paramref name="encoder"/> in
    /// eval mode, and their labels <c>(N)</c>; the caller owns both. <paramref name="onBatch"/> gets the batches done.
    /// </summary>
    public static (Tensor Features, Tensor Labels) Embed(BertEncoder encoder, EncodedExamples examples, int batchSize, Action<int>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(examples);
        encoder.eval();
        using var noGrad = no_grad();
        using var outer = NewDisposeScope();
        var features = new List<Tensor>();
        int done = 0;
        foreach (var batch in Enumerable.Range(0, examples.Count).Chunk(batchSize))
        {
            using var scope = NewDisposeScope();
            var (ids, mask, types, _) = examples.Batch(batch);
            var output = encoder.call(ids, mask, types);
            features.Add(SentencePooling.MeanPool(output.LastHiddenState, mask).MoveToOuterDisposeScope());
            onBatch?.Invoke(++done);
        }
        var all = cat(features, 0);
        var labels = tensor(examples.Labels.Select(l => (long)l).ToArray());
        return (all.MoveToOuterDisposeScope(), labels.MoveToOuterDisposeScope());
    }
}
