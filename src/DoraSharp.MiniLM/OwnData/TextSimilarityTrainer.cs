using System.Diagnostics;
using DoraSharp.MiniLM.Classification;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>A trained sentence encoder for search.</summary>
public sealed class TrainedEncoder : IDisposable
{
    /// <summary>The encoder (eval mode) with the kept epoch's weights.</summary>
    public required BertEncoder Encoder { get; init; }
    /// <summary>Its adapters (LoRA, DoRA), else null.</summary>
    public required LoraModel? Adapters { get; init; }
    /// <summary>Every epoch run (ValidationScore = MRR).</summary>
    public required IReadOnlyList<EpochRecord> History { get; init; }
    /// <summary>The epoch kept.</summary>
    public required int BestEpoch { get; init; }
    /// <summary>Whether training stopped early.</summary>
    public required bool StoppedEarly { get; init; }
    /// <summary>Trainable parameters.</summary>
    public required long TrainableParameters { get; init; }
    /// <summary>All parameters.</summary>
    public required long TotalParameters { get; init; }
    /// <summary>Disposes the encoder.</summary>
    public void Dispose() => Encoder.Dispose();
}

/// <summary>
/// Fine-tunes all-MiniLM-L6-v2 as a search encoder on (query, document) pairs with sentence-transformers'
/// <c>MultipleNegativesRankingLoss</c>: in a batch of B pairs, each query's own document is the positive and the
/// other B − 1 documents are its negatives; loss = cross-entropy over <c>scale · cos(q_i, d_j)</c> with target j = i
/// (Henderson et al. 2017, "Efficient Natural Language Response Suggestion for Smart Reply", §4.4).
/// </summary>
public static class TextSimilarityTrainer
{
    /// <summary>Trains on <paramref name="train"/> (pairs), validating MRR and loss on <paramref name="validation"/> after each epoch.</summary>
    public static TrainedEncoder Train(TextTrainingOptions options, TextPairs train, TextPairs validation, MiniLmTokenizer tokenizer,
        Action<TrainingStep>? progress = null, Action<EpochRecord>? epochDone = null, CancellationToken cancellation = default,
        EpochCheckpoint? checkpoint = null, bool resume = false)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.Method == FineTuningMethod.Frozen)
            throw new ArgumentException("--method frozen has nothing to train for --task similarity (there is no head); run `dora predict --task similarity` without --run for the pretrained model.", "--method");
        var queries = Encode(tokenizer, train.Queries);
        var documents = Encode(tokenizer, train.Documents);
        var encoder = MiniLmWeights.LoadPretrained();
        LoraModel? adapters = null;
        try
        {
            torch.manual_seed(options.Seed);
            if (options.Method is FineTuningMethod.Lora or FineTuningMethod.Dora)
                adapters = LoraModel.Wrap(encoder, options.AdapterConfig());
            else
                foreach (var (name, p) in encoder.named_parameters()) p.requires_grad = !name.StartsWith("pooler.", StringComparison.Ordinal);
            var trainable = encoder.parameters().Where(p => p.requires_grad).ToArray();
            using var optimizer = optim.AdamW(trainable, lr: options.EffectiveLearningRate, weight_decay: 0);
            var history = new List<EpochRecord>();
            Dictionary<string, Tensor>? best = null;
            int bestEpoch = 0, sinceBest = 0, step = 0;
            double bestValue = double.NaN;
            bool stoppedEarly = false;
            var random = new Random(options.Seed);
            var order = Enumerable.Range(0, train.Count).ToArray();
            int perEpoch = ClassifierTraining.StepsPerEpoch(train.Count, options.BatchSize);
            int startEpoch = 1;
                if (resume && checkpoint is not null)
                {
                    var (saved, savedBest) = checkpoint.Load(encoder, [optimizer]);
                    history.AddRange(saved.History);
                    (bestEpoch, sinceBest, bestValue, best, startEpoch) = (saved.BestEpoch, saved.SinceBest, saved.BestValue, savedBest, saved.Epoch + 1);
                    // The batch order of epoch e is the e-th shuffle of one seeded generator: replay the finished ones.
                    for (int e = 0; e < saved.Epoch; e++) random.Shuffle(order);
                    step = saved.Epoch * perEpoch;
                }
                for (int epoch = startEpoch; epoch <= options.Epochs; epoch++)
            {
                encoder.train();
                random.Shuffle(order);
                double sum = 0;
                int batches = 0, seen = 0;
                var clock = Stopwatch.StartNew();
                foreach (var batch in order.Chunk(options.BatchSize))
                {
                    cancellation.ThrowIfCancellationRequested();
                    using var scope = NewDisposeScope();
                    optimizer.zero_grad();
                    var loss = RankingLoss(encoder, queries, documents, batch, options.SimilarityScale);
                    var value = loss.item<float>();
                    if (!float.IsFinite(value))
                        throw new InvalidOperationException($"training diverged: the loss is {value} at epoch {epoch}, step {step + 1}; lower --lr.") { Source = "DoraSharp" };
                    loss.backward();
                    optimizer.step();
                    sum += value;
                    batches++;
                    seen += batch.Length;
                    step++;
                    progress?.Invoke(new TrainingStep(epoch, options.Epochs, step, perEpoch * options.Epochs, sum / batches, seen / Math.Max(clock.Elapsed.TotalSeconds, 1e-9), "train"));
                }
                var seconds = clock.Elapsed.TotalSeconds;
                progress?.Invoke(new TrainingStep(epoch, options.Epochs, step, perEpoch * options.Epochs, sum / batches, seen / Math.Max(seconds, 1e-9), "validate"));
                var (valLoss, ranking) = Validate(encoder, validation, tokenizer, options);
                var record = new EpochRecord(epoch, sum / batches, valLoss, ranking.Mrr, seconds);
                history.Add(record);
                epochDone?.Invoke(record);
                double watched = options.Monitor == StoppingMetric.Loss ? valLoss : -ranking.Mrr;
                if (best is null || watched < bestValue)
                {
                    bestValue = watched;
                    bestEpoch = epoch;
                    sinceBest = 0;
                    DisposeAll(best);
                    best = epoch < options.Epochs ? Snapshot(encoder) : null;
                }
                else if (options.Patience is { } patience && ++sinceBest >= patience && epoch < options.Epochs)
                {
                    stoppedEarly = true;
                    break;
                }
                if (epoch < options.Epochs)
                    checkpoint?.Save(new EpochProgress { Epoch = epoch, History = history.ToArray(), BestEpoch = bestEpoch, SinceBest = sinceBest, BestValue = bestValue, Fingerprint = new Dictionary<string, string>() },
                        encoder, best, [optimizer]);
            }
            if (best is not null && bestEpoch != history.Count)
            {
                using var noGrad = no_grad();
                foreach (var (name, p) in encoder.named_parameters())
                    if (best.TryGetValue(name, out var saved)) p.copy_(saved);
                adapters?.InvalidateCaches();   // DoRA's eval-mode norm cache: the adapter weights changed in place
            }
            DisposeAll(best);
            encoder.eval();
            return new TrainedEncoder
            {
                Encoder = encoder,
                Adapters = adapters,
                History = history,
                BestEpoch = bestEpoch,
                StoppedEarly = stoppedEarly,
                TrainableParameters = trainable.Sum(p => p.numel()),
                TotalParameters = encoder.parameters().Sum(p => p.numel()),
            };
        }
        catch
        {
            encoder.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The multiple-negatives ranking loss of the pairs at <paramref name="batch"/>: cross-entropy of
    /// <c>scale · Q Dᵀ</c> (unit-length embeddings, so cosine similarities) against the diagonal.
    /// </summary>
    public static Tensor RankingLoss(BertEncoder encoder, EncodedExamples queries, EncodedExamples documents, IReadOnlyList<int> batch, double scale)
    {
        using var scope = NewDisposeScope();
        var q = Embed(encoder, queries, batch);                                     // (B, C), unit rows
        var d = Embed(encoder, documents, batch);                                   // (B, C)
        var scores = q.matmul(d.t()) * scale;                                       // (B, B)
        var target = arange(batch.Count, dtype: ScalarType.Int64);                  // query i ↔ document i
        return nn.functional.cross_entropy(scores, target).MoveToOuterDisposeScope();
    }

    /// <summary>Unit-length mean-pooled embeddings <c>(B, C)</c> of the texts at <paramref name="indices"/> (sentence-transformers' encode).</summary>
    public static Tensor Embed(BertEncoder encoder, EncodedExamples texts, IReadOnlyList<int> indices)
    {
        using var scope = NewDisposeScope();
        var (ids, mask, types, _) = texts.Batch(indices);
        var output = encoder.call(ids, mask, types);
        return SentencePooling.L2Normalize(SentencePooling.MeanPool(output.LastHiddenState, mask)).MoveToOuterDisposeScope();
    }

    /// <summary>Unit-length embeddings of every text, <c>[text][C]</c>, in eval mode, in batches of 64.</summary>
    public static float[][] EmbedAll(BertEncoder encoder, EncodedExamples texts, Action<int>? onBatch = null)
    {
        encoder.eval();
        using var noGrad = no_grad();
        var rows = new List<float[]>(texts.Count);
        int done = 0;
        foreach (var batch in Enumerable.Range(0, texts.Count).Chunk(TextClassifierTrainer.InferenceBatchSize))
        {
            using var scope = NewDisposeScope();
            var e = Embed(encoder, texts, batch);
            int c = (int)e.shape[1];
            var data = e.data<float>().ToArray();
            for (int r = 0; r < batch.Length; r++) rows.Add(data.AsSpan(r * c, c).ToArray());
            onBatch?.Invoke(++done);
        }
        return rows.ToArray();
    }

    /// <summary>Cosine scores <c>[query, document]</c> of unit-length embeddings.</summary>
    public static float[,] Scores(float[][] queries, float[][] documents)
    {
        var scores = new float[queries.Length, documents.Length];
        for (int i = 0; i < queries.Length; i++)
            for (int j = 0; j < documents.Length; j++)
            {
                float s = 0;
                var a = queries[i];
                var b = documents[j];
                for (int k = 0; k < a.Length; k++) s += a[k] * b[k];
                scores[i, j] = s;
            }
        return scores;
    }

    /// <summary>Ranks, for each pair's query, every distinct document of <paramref name="pairs"/>.</summary>
    public static RankingMetrics Rank(BertEncoder encoder, TextPairs pairs, MiniLmTokenizer tokenizer)
    {
        var (documents, relevant) = pairs.Candidates();
        var q = EmbedAll(encoder, Encode(tokenizer, pairs.Queries));
        var d = EmbedAll(encoder, Encode(tokenizer, documents));
        return RankingMetrics.Compute(Scores(q, d), relevant);
    }

    /// <summary>Texts tokenized, with placeholder labels.</summary>
    public static EncodedExamples Encode(MiniLmTokenizer tokenizer, IReadOnlyList<string> texts) => new(tokenizer, texts, new int[texts.Count]);

    private static (double Loss, RankingMetrics Ranking) Validate(BertEncoder encoder, TextPairs validation, MiniLmTokenizer tokenizer, TextTrainingOptions options)
    {
        encoder.eval();
        var queries = Encode(tokenizer, validation.Queries);
        var documents = Encode(tokenizer, validation.Documents);
        double sum = 0;
        int batches = 0;
        using (no_grad())
        {
            foreach (var batch in Enumerable.Range(0, validation.Count).Chunk(options.BatchSize))
            {
                if (batch.Length < 2) continue;   // one pair has no negative: its loss is 0 whatever the model
                using var scope = NewDisposeScope();
                sum += RankingLoss(encoder, queries, documents, batch, options.SimilarityScale).item<float>() * batch.Length;
                batches += batch.Length;
            }
        }
        return (batches > 0 ? sum / batches : double.NaN, Rank(encoder, validation, tokenizer));
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module model)
    {
        using var noGrad = no_grad();
        return model.named_parameters().Where(p => p.parameter.requires_grad)
            .ToDictionary(p => p.name, p => p.parameter.detach().clone().DetachFromDisposeScope(), StringComparer.Ordinal);
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }
}
