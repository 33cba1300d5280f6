using System.Text;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.MiniLM;

/// <summary>These tests seed libtorch's global generator, so nothing else may draw from it meanwhile.</summary>
[CollectionDefinition(nameof(ClassificationTests), DisableParallelization = true)]
public sealed class ClassificationTestsCollection;

/// <summary>The MiniLM classification example: what trains, determinism, batching, data subsets, statistics.</summary>
[Collection(nameof(ClassificationTests))]
public sealed class ClassificationTests
{
    // 384 x 5 + 5: the head.
    private const long Head = 1_925;

    [Theory]
    [InlineData(FineTuningMethod.Frozen, Head)]
    [InlineData(FineTuningMethod.Lora, Head + 12 * (8 * 384 + 384 * 8))]
    [InlineData(FineTuningMethod.Dora, Head + 12 * (8 * 384 + 384 * 8 + 384))]
    // Every encoder parameter (22,713,216) but the pooler (384 x 384 + 384), which never reaches the loss.
    [InlineData(FineTuningMethod.Full, Head + 22_713_216 - 147_840)]
    public void Each_method_trains_exactly_its_parameters(FineTuningMethod method, long trainable)
    {
        using var classifier = ClassificationExperiment.CreateClassifier(method, 1, new ClassificationSettings(), 5,
            new BertEncoder(BertConfig.AllMiniLmL6V2), out var adapters);
        Assert.Equal(trainable, classifier.parameters().Where(p => p.requires_grad).Sum(p => p.numel()));
        Assert.All(classifier.Head.parameters(), p => Assert.True(p.requires_grad));
        Assert.Equal(method.HasAdapter(), adapters is not null);
        if (adapters is not null) Assert.Equal(method == FineTuningMethod.Dora, adapters.Config.UseDora);
    }

    [Fact]
    public void A_seed_gives_every_method_the_same_head_and_another_seed_a_different_one()
    {
        Tensor HeadWeight(FineTuningMethod method, int seed)
        {
            using var c = ClassificationExperiment.CreateClassifier(method, seed, new ClassificationSettings { R = 2 }, 3, TinyBert.Create(0), out _);
            return c.Head.parameters().First().detach().clone();
        }
        using var lora = HeadWeight(FineTuningMethod.Lora, 7);
        using var full = HeadWeight(FineTuningMethod.Full, 7);
        using var dora = HeadWeight(FineTuningMethod.Dora, 7);
        using var other = HeadWeight(FineTuningMethod.Lora, 8);
        Assert.True(Same(lora, full) && Same(lora, dora));
        Assert.False(Same(lora, other));
    }

    private static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    private static MiniLmTokenizer TinyTokenizer(int maxLength = 8)
    {
        var vocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nalpha\nbeta\ngamma\ndelta\nepsilon\nzeta\n";
        return new MiniLmTokenizer(new MemoryStream(Encoding.UTF8.GetBytes(vocab)), maxLength);
    }

    private static EncodedExamples TinyTask()
    {
        // Class 0 is about alpha/beta, class 1 about gamma/delta; epsilon and zeta are noise.
        string[] texts = ["alpha beta", "beta alpha epsilon", "alpha zeta", "beta beta alpha", "gamma delta", "delta gamma zeta", "gamma epsilon", "delta delta gamma"];
        return new EncodedExamples(TinyTokenizer(), texts, [0, 0, 0, 0, 1, 1, 1, 1]);
    }

    private static (double Loss, float[] Head, int Correct) TrainTiny(FineTuningMethod method, int seed)
    {
        // Tensors this small only pay for thread hand-offs; the collection runs alone, so the global setting is safe.
        int threads = get_num_threads();
        set_num_threads(1);
        try { return TrainTinyOnOneThread(method, seed); }
        finally { set_num_threads(threads); }
    }

    private static (double Loss, float[] Head, int Correct) TrainTinyOnOneThread(FineTuningMethod method, int seed)
    {
        var settings = new ClassificationSettings { R = 2, LoraAlpha = 4 };
        using var classifier = ClassificationExperiment.CreateClassifier(method, seed, settings, 2, TinyBert.Create(0), out _);
        var trainable = classifier.parameters().Where(p => p.requires_grad).ToList();
        // Full fine-tuning of even a tiny BERT diverges at the adapters' rate.
        using var optimizer = optim.AdamW(trainable, lr: method == FineTuningMethod.Full ? 0.01 : 0.05, weight_decay: 0);
        var data = TinyTask();
        var loss = ClassifierTraining.Train(classifier, data, [optimizer], epochs: 20, batchSize: 3, shuffleSeed: seed);
        int correct = ClassifierTraining.CountCorrect(classifier, data, batchSize: 5);
        return (loss, classifier.Head.parameters().First().detach().data<float>().ToArray(), correct);
    }

    [Theory]
    [InlineData(FineTuningMethod.Lora)]
    [InlineData(FineTuningMethod.Dora)]
    [InlineData(FineTuningMethod.Full)]
    public void Training_is_deterministic_given_a_seed_and_learns_a_separable_task(FineTuningMethod method)
    {
        var first = TrainTiny(method, 3);
        var again = TrainTiny(method, 3);
        var other = TrainTiny(method, 4);
        Assert.Equal(first.Loss, again.Loss);
        Assert.Equal(first.Head, again.Head);
        Assert.NotEqual(first.Head, other.Head);
        // Chance is ln 2 = 0.693; the task is separable by word identity.
        Assert.True(first.Loss < 0.35, $"final epoch loss {first.Loss}");
        Assert.Equal(8, first.Correct);
    }

    [Fact]
    public void Batches_are_padded_to_their_longest_example_with_a_matching_mask()
    {
        var data = new EncodedExamples(TinyTokenizer(maxLength: 5), ["alpha", "gamma delta zeta beta", ""], [1, 0, 1]);
        Assert.Equal([3, 5, 2], data.Lengths);
        var (ids, mask, types, labels) = data.Batch([2, 0]);
        using (ids) using (mask) using (types) using (labels)
        {
            // [CLS]=2 [SEP]=3 [PAD]=0; "alpha" = 5; the longest of the two has 3 tokens.
            Assert.Equal(new long[] { 2, 3, 0, 2, 5, 3 }, ids.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 1, 0, 1, 1, 1 }, mask.data<long>().ToArray());
            Assert.Equal(new long[] { 2, 3 }, ids.shape);
            Assert.Equal(new long[] { 0, 0, 0, 0, 0, 0 }, types.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 1 }, labels.data<long>().ToArray());
        }
        // Truncation to maxLength keeps [CLS], the first 3 pieces and [SEP].
        var (longIds, m2, t2, l2) = data.Batch([1]);
        using (longIds) using (m2) using (t2) using (l2)
            Assert.Equal(new long[] { 2, 7, 8, 10, 3 }, longIds.data<long>().ToArray());
    }

    [Fact]
    public void The_training_subset_is_balanced_and_fixed_by_its_seed_and_the_test_split_is_whole()
    {
        var dataset = DebianDescriptions.Load(DebianDescriptions.FindSnapshot());
        var tokenizer = MiniLmTokenizer.FromPackage(16);
        var a = DebianClassificationData.Create(dataset, tokenizer, 30, null, 11);
        var b = DebianClassificationData.Create(dataset, tokenizer, 30, null, 11);
        var c = DebianClassificationData.Create(dataset, tokenizer, 30, null, 12);
        Assert.Equal(["admin", "devel", "libs", "net", "utils"], a.Labels);
        Assert.Equal(150, a.Train.Count);
        Assert.All(Enumerable.Range(0, 5), k => Assert.Equal(30, a.Train.Labels.Count(l => l == k)));
        Assert.Equal(750, a.Test.Count);
        Assert.All(Enumerable.Range(0, 5), k => Assert.Equal(150, a.Test.Labels.Count(l => l == k)));
        using var ia = a.Train.Batch(Enumerable.Range(0, 150).ToArray()).InputIds;
        using var ib = b.Train.Batch(Enumerable.Range(0, 150).ToArray()).InputIds;
        using var ic = c.Train.Batch(Enumerable.Range(0, 150).ToArray()).InputIds;
        Assert.True(Same(ia, ib));
        Assert.False(Same(ia, ic));
        var e = Assert.Throws<ArgumentException>(() => DebianClassificationData.Create(dataset, tokenizer, 601, null, 11));
        Assert.Contains("601 train examples per class", e.Message);
    }

    [Fact]
    public void Summary_reports_mean_and_sample_standard_deviation()
    {
        RunResult Run(int seed, int correct) => new(FineTuningMethod.Lora, seed, correct, 200, 10, 100, TimeSpan.FromSeconds(seed), TimeSpan.Zero, 0.5);
        var s = new MethodSummary(FineTuningMethod.Lora, [Run(1, 160), Run(2, 180), Run(3, 170)]);
        Assert.Equal([0.8, 0.9, 0.85], s.Accuracies);
        Assert.Equal(0.85, s.MeanAccuracy, 12);
        Assert.Equal(0.05, s.StdAccuracy, 12);
        Assert.Equal(TimeSpan.FromSeconds(2), s.MeanTrainTime);
        Assert.Equal(0, new MethodSummary(FineTuningMethod.Lora, [Run(1, 160)]).StdAccuracy);
    }

    [Fact]
    public void Settings_refuse_invalid_values_naming_them()
    {
        Assert.Contains("Seeds", Assert.Throws<ArgumentException>(() => new ClassificationSettings { Seeds = [1, 1] }.Validate()).Message);
        Assert.Contains("MaxLength", Assert.Throws<ArgumentException>(() => new ClassificationSettings { MaxLength = 1 }.Validate()).Message);
        Assert.Contains("LoraConfig.R", Assert.Throws<LoraConfigException>(() => new ClassificationSettings { R = 0 }.Validate()).Message);
        new ClassificationSettings().Validate();
    }
}
