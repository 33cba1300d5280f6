using System.Diagnostics;
using DoraSharp.MiniLM.Classification;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// A trained classifier and how it got there. The model holds the weights of <see cref="BestEpoch"/> (not
/// necessarily the last), and <see cref="ValidationProbabilities"/> are computed with exactly those weights.
/// </summary>
public sealed class TrainedClassifier : IDisposable
{
    /// <summary>MiniLM plus head; in eval mode.</summary>
    public required SentenceClassifier Model { get; init; }

    /// <summary>The adapters on <see cref="Model"/> (LoRA, DoRA; the head is their modules_to_save), else null.</summary>
    public required LoraModel? Adapters { get; init; }

    /// <summary>Every epoch run.</summary>
    public required IReadOnlyList<EpochRecord> History { get; init; }

    /// <summary>The epoch whose weights were kept (1-based).</summary>
    public required int BestEpoch { get; init; }

    /// <summary>True when training stopped before the last epoch because validation stopped improving.</summary>
    public required bool StoppedEarly { get; init; }

    /// <summary>Softmax probabilities <c>[example][class]</c> of the validation set, in its order.</summary>
    public required float[][] ValidationProbabilities { get; init; }

    /// <summary>Parameters the optimizers updated, head included.</summary>
    public required long TrainableParameters { get; init; }

    /// <summary>All parameters of the model.</summary>
    public required long TotalParameters { get; init; }

    /// <summary>Disposes the model.</summary>
    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Fine-tunes all-MiniLM-L6-v2 with a linear head on a user's labelled texts: AdamW (head and encoder at their own
/// rates), cross-entropy, a seeded shuffle per epoch, validation after every epoch, early stopping with the best
/// epoch's weights kept in memory (as Hugging Face's <c>load_best_model_at_end</c>).
/// </summary>
public static class TextClassifierTrainer
{
    /// <summary>Examples per forward pass when only predicting. Fixed: the same batches give the same numbers.</summary>
    public const int InferenceBatchSize = 64;

    /// <summary>The head's module name; PEFT saves it as <c>modules_to_save</c> under this name.</summary>
    public const string HeadName = "classifier";

    /// <summary>
    /// The pretrained encoder with a head for <paramref name="classes"/> classes (head drawn after
    /// <c>manual_seed(seed)</c>), set up for <paramref name="options"/>' method; for LoRA and DoRA the adapters are
    /// put on the whole classifier with the head as modules_to_save, so PEFT's keys are
    /// <c>base_model.model.bert.encoder.layer.N…lora_A.weight</c> and <c>base_model.model.classifier.weight</c>.
    /// </summary>
    public static SentenceClassifier Create(TextTrainingOptions options, int classes, out LoraModel? adapters)
    {
        var encoder = MiniLmWeights.LoadPretrained();
        torch.manual_seed(options.Seed);
        var model = new SentenceClassifier(encoder, classes);
        adapters = null;
        try
        {
            switch (options.Method)
            {
                case FineTuningMethod.Lora:
                case FineTuningMethod.Dora:
                    adapters = LoraModel.Wrap(model, options.AdapterConfig([HeadName]));
                    break;
                case FineTuningMethod.Full:
                    // The BERT pooler never reaches the loss (mean pooling feeds the head): frozen, as in the demo.
                    foreach (var (name, p) in model.named_parameters())
                        p.requires_grad = !name.StartsWith("bert.pooler.", StringComparison.Ordinal);
                    break;
                default:
                    foreach (var p in encoder.parameters()) p.requires_grad = false;
                    break;
            }
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Trains on <paramref name="train"/>, validating on <paramref name="validation"/> after every epoch.</summary>
    public static TrainedClassifier Train(TextTrainingOptions options, int classes, EncodedExamples train, EncodedExamples validation,
        Action<TrainingStep>? progress = null, Action<EpochRecord>? epochDone = null, CancellationToken cancellation = default,
        EpochCheckpoint? checkpoint = null, bool resume = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var model = Create(options, classes, out var adapters);
        try
        {
            var named = model.named_parameters().Where(p => p.parameter.requires_grad).ToArray();
            var head = named.Where(p => p.name.StartsWith(HeadName + ".", StringComparison.Ordinal)).Select(p => p.parameter).ToArray();
            var body = named.Where(p => !p.name.StartsWith(HeadName + ".", StringComparison.Ordinal)).Select(p => p.parameter).ToArray();
            var optimizers = new List<optim.Optimizer> { optim.AdamW(head, lr: options.HeadLearningRate, weight_decay: 0) };
            if (body.Length > 0) optimizers.Add(optim.AdamW(body, lr: options.EffectiveLearningRate, weight_decay: 0));
            try
            {
                var history = new List<EpochRecord>();
                Dictionary<string, Tensor>? best = null;
                int bestEpoch = 0, sinceBest = 0;
                double bestValue = double.NaN;
                var random = new Random(options.Seed);
                var order = Enumerable.Range(0, train.Count).ToArray();
                int perEpoch = ClassifierTraining.StepsPerEpoch(train.Count, options.BatchSize), step = 0;
                bool stoppedEarly = false;
                int startEpoch = 1;
                if (resume && checkpoint is not null)
                {
                    var (saved, savedBest) = checkpoint.Load(model, optimizers);
                    history.AddRange(saved.History);
                    (bestEpoch, sinceBest, bestValue, best, startEpoch) = (saved.BestEpoch, saved.SinceBest, saved.BestValue, savedBest, saved.Epoch + 1);
                    // The batch order of epoch e is the e-th shuffle of one seeded generator: replay the finished ones.
                    for (int e = 0; e < saved.Epoch; e++) random.Shuffle(order);
                    step = saved.Epoch * perEpoch;
                }
                for (int epoch = startEpoch; epoch <= options.Epochs; epoch++)
                {
                    model.train();
                    random.Shuffle(order);
                    double sum = 0;
                    int batches = 0, seen = 0;
                    var clock = Stopwatch.StartNew();
                    foreach (var batch in order.Chunk(options.BatchSize))
                    {
                        cancellation.ThrowIfCancellationRequested();
                        using var scope = NewDisposeScope();
                        foreach (var o in optimizers) o.zero_grad();
                        var (ids, mask, types, labels) = train.Batch(batch);
                        var loss = nn.functional.cross_entropy(model.call(ids, mask, types), labels);
                        var value = loss.item<float>();
                        if (!float.IsFinite(value))
                            throw new InvalidOperationException($"training diverged: the loss is {value} at epoch {epoch}, step {step + 1}; lower --lr or --head-lr.") { Source = "DoraSharp" };
                        loss.backward();
                        foreach (var o in optimizers) o.step();
                        sum += value;
                        batches++;
                        seen += batch.Length;
                        step++;
                        progress?.Invoke(new TrainingStep(epoch, options.Epochs, step, perEpoch * options.Epochs, sum / batches, seen / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), "train"));
                    }
                    var seconds = clock.Elapsed.TotalSeconds;
                    progress?.Invoke(new TrainingStep(epoch, options.Epochs, step, perEpoch * options.Epochs, sum / batches, seen / Math.Max(seconds, 1e-9), "validate"));
                    var (valLoss, valProbabilities) = Evaluate(model, validation);
                    double accuracy = Accuracy(valProbabilities, validation.Labels);
                    var record = new EpochRecord(epoch, sum / batches, valLoss, accuracy, seconds);
                    history.Add(record);
                    epochDone?.Invoke(record);
                    double watched = options.Monitor == StoppingMetric.Loss ? valLoss : -accuracy;
                    if (best is null || watched < bestValue)
                    {
                        bestValue = watched;
                        bestEpoch = epoch;
                        sinceBest = 0;
                        if (epoch < options.Epochs) best = Snapshot(model, best);
                        else { DisposeAll(best); best = null; }   // the last epoch is the model as it stands
                    }
                    else if (options.Patience is { } patience && ++sinceBest >= patience && epoch < options.Epochs)
                    {
                        stoppedEarly = true;
                        break;
                    }
                    if (epoch < options.Epochs)
                        checkpoint?.Save(new EpochProgress { Epoch = epoch, History = history.ToArray(), BestEpoch = bestEpoch, SinceBest = sinceBest, BestValue = bestValue, Fingerprint = new Dictionary<string, string>() },
                            model, best, optimizers);
                }
                if (best is not null && bestEpoch != history.Count)
                {
                    Restore(model, best);
                    // DoRA caches the weight norm in eval mode; the adapter weights just changed in place under it.
                    adapters?.InvalidateCaches();
                }
                DisposeAll(best);
                var (_, probabilities) = Evaluate(model, validation);
                return new TrainedClassifier
                {
                    Model = model,
                    Adapters = adapters,
                    History = history,
                    BestEpoch = bestEpoch,
                    StoppedEarly = stoppedEarly,
                    ValidationProbabilities = probabilities,
                    TrainableParameters = named.Sum(p => p.parameter.numel()),
                    TotalParameters = model.parameters().Sum(p => p.numel()),
                };
            }
            finally
            {
                foreach (var o in optimizers) o.Dispose();
            }
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Mean cross-entropy and softmax probabilities <c>[example][class]</c> of <paramref name="examples"/> under
    /// <paramref name="model"/> in eval mode, in batches of <see cref="InferenceBatchSize"/> in the examples' order.
    /// `dora predict` calls this too, so the same file gives the same numbers.
    /// </summary>
    public static (double Loss, float[][] Probabilities) Evaluate(SentenceClassifier model, EncodedExamples examples, Action<int>? onBatch = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(examples);
        model.eval();
        using var noGrad = no_grad();
        var probabilities = new List<float[]>(examples.Count);
        double lossSum = 0;
        int done = 0;
        foreach (var batch in Enumerable.Range(0, examples.Count).Chunk(InferenceBatchSize))
        {
            using var scope = NewDisposeScope();
            var (ids, mask, types, labels) = examples.Batch(batch);
            var logits = model.call(ids, mask, types);                                   // (B, classes)
            lossSum += nn.functional.cross_entropy(logits, labels, reduction: nn.Reduction.Sum).item<float>();
            var p = nn.functional.softmax(logits, 1).data<float>().ToArray();
            int classes = (int)logits.shape[1];
            for (int row = 0; row < batch.Length; row++) probabilities.Add(p.AsSpan(row * classes, classes).ToArray());
            onBatch?.Invoke(++done);
        }
        return (lossSum / Math.Max(examples.Count, 1), probabilities.ToArray());
    }

    /// <summary>The index of the largest probability of each row (the first one on a tie, as torch.argmax).</summary>
    public static int[] ArgMax(float[][] probabilities) => probabilities.Select(row =>
    {
        int best = 0;
        for (int c = 1; c < row.Length; c++) if (row[c] > row[best]) best = c;
        return best;
    }).ToArray();

    private static double Accuracy(float[][] probabilities, IReadOnlyList<int> labels)
    {
        var predicted = ArgMax(probabilities);
        return predicted.Where((p, i) => p == labels[i]).Count() / (double)Math.Max(labels.Count, 1);
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module model, Dictionary<string, Tensor>? previous)
    {
        DisposeAll(previous);
        var copy = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (p.requires_grad) copy[name] = p.detach().clone().DetachFromDisposeScope();
        return copy;
    }

    private static void Restore(nn.Module model, Dictionary<string, Tensor> snapshot)
    {
        using var noGrad = no_grad();
        foreach (var (name, p) in model.named_parameters())
            if (snapshot.TryGetValue(name, out var saved)) p.copy_(saved);
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }
}
