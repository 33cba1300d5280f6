using System.Diagnostics;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Classification;
using DoraSharp.MiniLM.Export;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Onnx;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Cli.Bench;

/// <summary>
/// `dora bench --inference --run RUN` (issue 18): sentences per second of a LoRA/DoRA run served three ways, texts in
/// and probabilities (or embeddings) out, tokenization included: TorchSharp with the adapter unmerged (as trained),
/// TorchSharp with the adapter merged (<c>MergeAndUnload</c>), and ONNX Runtime on the run exported by
/// <see cref="RunExporter"/> (through <see cref="OnnxTextModel"/>, what a service uses). The three are loaded side by
/// side and timed interleaved, step by step, so that load changes on a shared machine hit them alike.
/// </summary>
internal static class InferenceBenchmark
{
    public const string Unmerged = "torchsharp_unmerged", Merged = "torchsharp_merged", OnnxRuntime = "onnx_runtime";
    public static readonly string[] Engines = [Unmerged, Merged, OnnxRuntime];

    // Common words that are one word piece each, so a text of n of them is n + 2 tokens ([CLS], [SEP]).
    private static readonly string[] Words = ["the", "system", "package", "provides", "a", "simple", "tool", "for", "users", "and", "it", "runs", "on", "linux", "with", "data"];

    /// <summary>One record per engine and batch size: median and minimum ms per batch, sentences/s.</summary>
    public static List<BenchRecord> Run(string run, IReadOnlyList<int> batches, int tokens, int warmup, int steps, int threads, Action<string>? status)
    {
        var manifest = RunExporter.ReadRun(run);
        if (manifest.Method is not ("lora" or "dora"))
            throw new UsageException($"--run {run}: a {manifest.Method} run has no adapter to compare merged and unmerged; give a LoRA or DoRA run.");
        bool classification = manifest.Task == "classification";
        set_num_threads(threads);
        var tokenizer = MiniLmTokenizer.FromPackage(manifest.Tokenizer.MaxLength);
        int length = Math.Min(tokens, manifest.Tokenizer.MaxLength);
        var texts = Enumerable.Range(0, batches.Max())
            .Select(i => string.Join(' ', Enumerable.Range(i, length - 2).Select(j => Words[j % Words.Length]))).ToArray();

        var temp = Path.Combine(Path.GetTempPath(), $"dora-bench-inference-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        status?.Invoke("exporting the run for ONNX Runtime");
        using var unmerged = Load(run, manifest, merge: false);
        using var merged = Load(run, manifest, merge: true);
        try
        {
            RunExporter.Export(new ExportOptions { Run = run, Out = Path.Combine(temp, "model"), CheckTexts = 4, OnnxThreads = threads });
            using var onnx = OnnxTextModel.Load(Path.Combine(temp, "model"), threads, batchSize: batches.Max());
            var records = new List<BenchRecord>();
            foreach (var batch in batches)
            {
                var input = texts[..batch];
                var times = Engines.ToDictionary(e => e, _ => new List<double>());
                for (int step = 0; step < warmup + steps; step++)
                {
                    status?.Invoke($"batch {batch}, step {step + 1} of {warmup + steps}");
                    foreach (var engine in Engines)
                    {
                        var watch = Stopwatch.StartNew();
                        if (engine == OnnxRuntime) onnx.Run(input);
                        else Infer(engine == Merged ? merged : unmerged, tokenizer, input, classification);
                        if (step >= warmup) times[engine].Add(watch.Elapsed.TotalMilliseconds);
                    }
                }
                foreach (var engine in Engines)
                {
                    var median = LayerBenchmark.Median(times[engine]);
                    records.Add(new BenchRecord($"b{batch}x{length}", R: 0, Tokens: batch * length, engine, Phases.Infer, median, times[engine].Min(), PeakMb: null)
                    {
                        SentencesPerSecond = batch * 1000.0 / median,
                        Threads = threads,
                    });
                }
            }
            return records;
        }
        finally
        {
            Directory.Delete(temp, recursive: true);
        }
    }

    private static nn.Module Load(string run, TextRunManifest manifest, bool merge)
    {
        var encoder = MiniLmWeights.LoadPretrained();
        nn.Module model = manifest.Task == "classification" ? new SentenceClassifier(encoder, manifest.Labels.Count) : encoder;
        try
        {
            var adapters = LoraModel.LoadAdapter(model, Path.Combine(run, TextRunFiles.AdapterFolder));
            var result = merge ? adapters.MergeAndUnload() : model;
            result.eval();
            return result;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    // What `dora predict` runs: tokenization, the forward pass in eval mode without gradients, softmax or pooling.
    private static void Infer(nn.Module model, MiniLmTokenizer tokenizer, string[] texts, bool classification)
    {
        var examples = new EncodedExamples(tokenizer, texts, new int[texts.Length]);
        if (classification) TextClassifierTrainer.Evaluate((SentenceClassifier)model, examples);
        else TextSimilarityTrainer.EmbedAll((BertEncoder)model, examples);
    }
}
