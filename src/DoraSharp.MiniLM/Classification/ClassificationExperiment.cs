using System.Diagnostics;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.Classification;

/// <summary>
/// Fine-tunes all-MiniLM-L6-v2 with a linear head on a text-classification task in up to four ways
/// (<see cref="FineTuningMethod"/>), each with several seeds, and measures test accuracy, trainable parameters
/// and time. Every run starts from the pretrained weights; for a given seed every method starts from the same
/// head and sees the batches in the same order.
/// </summary>
public static class ClassificationExperiment
{
    /// <summary>Examples per batch when only running the encoder forward (embedding, evaluation).</summary>
    public const int InferenceBatchSize = 64;

    /// <summary>
    /// Runs every method of <paramref name="settings"/> with every seed on <paramref name="data"/>.
    /// <paramref name="progress"/> is told about every step; <paramref name="onTrained"/> gets each trained model
    /// before it is disposed (to save adapters). Returns one summary per method, in the settings' order.
    /// </summary>
    public static IReadOnlyList<MethodSummary> Run(
        ClassificationSettings settings,
        DebianClassificationData data,
        Action<ExperimentProgress>? progress = null,
        Action<TrainedRun>? onTrained = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(data);
        settings.Validate();
        if (settings.Methods.Any(m => m.HasAdapter())) CheckTargets(settings);
        // Parsed once: each run copies the pretrained weights into a fresh encoder.
        var onnx = MiniLmWeights.ReadPackageModel();
        var summaries = new List<MethodSummary>();
        foreach (var method in settings.Methods)
        {
            var runs = method == FineTuningMethod.Frozen
                ? RunFrozen(settings, data, onnx, progress, onTrained)
                : settings.Seeds.Select(seed => RunEncoder(method, seed, settings, data, onnx, progress, onTrained)).ToList();
            summaries.Add(new MethodSummary(method, runs));
        }
        return summaries;
    }

    /// <summary>Fails before any run, rather than after the first ones, when the targets match no Linear of the encoder.</summary>
    private static void CheckTargets(ClassificationSettings settings)
    {
        using var probe = new BertEncoder(BertConfig.AllMiniLmL6V2);
        LoraModel.Wrap(probe, settings.AdapterConfig(useDora: false));
    }

    private static BertEncoder Pretrained(Onnx.ModelProto onnx)
    {
        var encoder = new BertEncoder(BertConfig.AllMiniLmL6V2);
        try
        {
            MiniLmWeights.LoadInto(encoder, onnx);
            return encoder;
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    private static List<RunResult> RunFrozen(
        ClassificationSettings settings, DebianClassificationData data, Onnx.ModelProto onnx,
        Action<ExperimentProgress>? progress, Action<TrainedRun>? onTrained)
    {
        var method = FineTuningMethod.Frozen;
        using var encoder = Pretrained(onnx);
        int trainBatches = ClassifierTraining.StepsPerEpoch(data.Train.Count, InferenceBatchSize);
        int testBatches = ClassifierTraining.StepsPerEpoch(data.Test.Count, InferenceBatchSize);
        int embedTotal = trainBatches + testBatches;

        // The encoder never changes, so its embeddings are computed once and every seed trains the head on them.
        var clock = Stopwatch.StartNew();
        var (trainFeatures, trainLabels) = ClassifierTraining.Embed(encoder, data.Train, InferenceBatchSize,
            done => progress?.Invoke(new(method, null, ExperimentPhase.Embedding, done, embedTotal, null)));
        var trainEmbedTime = clock.Elapsed;
        clock.Restart();
        var (testFeatures, testLabels) = ClassifierTraining.Embed(encoder, data.Test, InferenceBatchSize,
            done => progress?.Invoke(new(method, null, ExperimentPhase.Embedding, trainBatches + done, embedTotal, null)));
        var testEmbedTime = clock.Elapsed;

        using (trainFeatures) using (trainLabels) using (testFeatures) using (testLabels)
        {
            var results = new List<RunResult>();
            int steps = settings.Epochs * ClassifierTraining.StepsPerEpoch(data.Train.Count, settings.BatchSize);
            foreach (var seed in settings.Seeds)
            {
                // The same draw as SentenceClassifier's own head, so every method starts from this head for this seed.
                torch.manual_seed(seed);
                using var head = SentenceClassifier.CreateHead(encoder.Config, data.Labels.Count);
                using var optimizer = torch.optim.AdamW(head.parameters(), lr: settings.HeadLearningRate, weight_decay: settings.WeightDecay);
                clock.Restart();
                var loss = ClassifierTraining.TrainHead(head, trainFeatures, trainLabels, optimizer, settings.Epochs, settings.BatchSize, seed,
                    (done, l) => progress?.Invoke(new(method, seed, ExperimentPhase.Training, done, steps + 1, l)));
                var trainTime = trainEmbedTime + clock.Elapsed;
                clock.Restart();
                int correct = ClassifierTraining.CountCorrect(head, testFeatures, testLabels);
                var evalTime = testEmbedTime + clock.Elapsed;
                progress?.Invoke(new(method, seed, ExperimentPhase.Evaluating, steps + 1, steps + 1, null));
                long trainable = head.parameters().Sum(p => p.numel());
                var result = new RunResult(method, seed, correct, data.Test.Count,
                    trainable, trainable + encoder.parameters().Sum(p => p.numel()), trainTime, evalTime, loss);
                results.Add(result);
                onTrained?.Invoke(new TrainedRun(result, encoder, head, null));
            }
            return results;
        }
    }

    private static RunResult RunEncoder(
        FineTuningMethod method, int seed, ClassificationSettings settings, DebianClassificationData data, Onnx.ModelProto onnx,
        Action<ExperimentProgress>? progress, Action<TrainedRun>? onTrained)
    {
        using var classifier = CreateClassifier(method, seed, settings, data.Labels.Count, Pretrained(onnx), out var adapters);
        var optimizers = new List<optim.Optimizer>
        {
            torch.optim.AdamW(classifier.Head.parameters(), lr: settings.HeadLearningRate, weight_decay: settings.WeightDecay),
            torch.optim.AdamW(classifier.Encoder.parameters().Where(p => p.requires_grad),
                lr: method == FineTuningMethod.Full ? settings.FullLearningRate : settings.AdapterLearningRate,
                weight_decay: settings.WeightDecay),
        };
        try
        {
            int steps = settings.Epochs * ClassifierTraining.StepsPerEpoch(data.Train.Count, settings.BatchSize);
            int evalBatches = ClassifierTraining.StepsPerEpoch(data.Test.Count, InferenceBatchSize);
            int total = steps + evalBatches;
            var clock = Stopwatch.StartNew();
            var loss = ClassifierTraining.Train(classifier, data.Train, optimizers, settings.Epochs, settings.BatchSize, seed,
                (done, l) => progress?.Invoke(new(method, seed, ExperimentPhase.Training, done, total, l)));
            var trainTime = clock.Elapsed;
            clock.Restart();
            int correct = ClassifierTraining.CountCorrect(classifier, data.Test, InferenceBatchSize,
                done => progress?.Invoke(new(method, seed, ExperimentPhase.Evaluating, steps + done, total, null)));
            var evalTime = clock.Elapsed;
            var result = new RunResult(method, seed, correct, data.Test.Count,
                Count(classifier, trainable: true), Count(classifier, trainable: false), trainTime, evalTime, loss);
            onTrained?.Invoke(new TrainedRun(result, classifier.Encoder, classifier.Head, adapters));
            return result;
        }
        finally
        {
            foreach (var o in optimizers) o.Dispose();
        }
    }

    /// <summary>
    /// <paramref name="encoder"/> (which the result then owns) with a new head, set up for <paramref name="method"/>:
    /// the head from <c>manual_seed(seed)</c> first (so it is the same for every method), then the adapters;
    /// requires_grad on exactly what trains.
    /// </summary>
    internal static SentenceClassifier CreateClassifier(
        FineTuningMethod method, int seed, ClassificationSettings settings, int classes, BertEncoder encoder, out LoraModel? adapters)
    {
        torch.manual_seed(seed);
        var classifier = new SentenceClassifier(encoder, classes);
        adapters = null;
        try
        {
            switch (method)
            {
                case FineTuningMethod.Lora:
                case FineTuningMethod.Dora:
                    // Wrap freezes every encoder parameter and leaves the adapters trainable.
                    adapters = LoraModel.Wrap(encoder, settings.AdapterConfig(useDora: method == FineTuningMethod.Dora));
                    break;
                case FineTuningMethod.Full:
                    // The BERT pooler is computed but never reaches the loss (the head reads the mean-pooled
                    // embedding), so it would get no gradient; freezing it keeps the trainable count honest.
                    foreach (var (name, p) in encoder.named_parameters())
                        p.requires_grad = !name.StartsWith("pooler.", StringComparison.Ordinal);
                    break;
                case FineTuningMethod.Frozen:
                    foreach (var p in encoder.parameters()) p.requires_grad = false;
                    break;
            }
            return classifier;
        }
        catch
        {
            classifier.Dispose();
            throw;
        }
    }

    private static long Count(SentenceClassifier classifier, bool trainable) =>
        classifier.parameters().Where(p => !trainable || p.requires_grad).Sum(p => p.numel());
}
