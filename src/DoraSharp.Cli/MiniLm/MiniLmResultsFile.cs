using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using DoraSharp.MiniLM.Classification;

namespace DoraSharp.Cli.MiniLm;

/// <summary>Writes `dora minilm-demo`'s <c>results.json</c>: the settings, and per method every seed's accuracy and the summary.</summary>
internal static class MiniLmResultsFile
{
    public const string FileName = "results.json";

    /// <summary>Writes the file into <paramref name="folder"/> and returns its path.</summary>
    public static string Write(string folder, ClassificationSettings settings, IReadOnlyList<MethodSummary> summaries,
        DebianClassificationData data, int threads, TimeSpan wallTime)
    {
        var document = new
        {
            task = "Debian package long descriptions -> archive section",
            model = "all-MiniLM-L6-v2 (mean-pooled embedding) + Linear(384, classes) head",
            labels = data.Labels,
            train_examples = data.Train.Count,
            test_examples = data.Test.Count,
            settings = new
            {
                max_length = settings.MaxLength,
                train_per_class = settings.TrainPerClass,
                test_per_class = settings.TestPerClass,
                epochs = settings.Epochs,
                batch_size = settings.BatchSize,
                optimizer = "AdamW",
                adapter_lr = settings.AdapterLearningRate,
                head_lr = settings.HeadLearningRate,
                full_lr = settings.FullLearningRate,
                weight_decay = settings.WeightDecay,
                r = settings.R,
                lora_alpha = settings.LoraAlpha,
                target_modules = settings.TargetModules,
                seeds = settings.Seeds,
                subset_seed = settings.SubsetSeed,
                threads,
            },
            methods = summaries.Select(s => new
            {
                method = s.Method.Key(),
                accuracies = s.Accuracies,
                correct = s.Runs.Select(r => r.Correct),
                seeds = s.Runs.Select(r => r.Seed),
                mean_accuracy = s.MeanAccuracy,
                std_accuracy = s.StdAccuracy,
                std_kind = "sample (n - 1)",
                test_count = s.TestCount,
                trainable_parameters = s.TrainableParameters,
                total_parameters = s.Runs[0].TotalParameters,
                train_seconds = s.Runs.Select(r => Math.Round(r.TrainTime.TotalSeconds, 2)),
                mean_train_seconds = Math.Round(s.MeanTrainTime.TotalSeconds, 2),
                eval_seconds = s.Runs.Select(r => Math.Round(r.EvalTime.TotalSeconds, 2)),
                final_train_loss = s.Runs.Select(r => r.FinalTrainLoss),
            }),
            wall_seconds = Math.Round(wallTime.TotalSeconds, 1),
        };
        var path = Path.Combine(folder, FileName);
        File.WriteAllText(path, JsonSerializer.Serialize(document, new JsonSerializerOptions
        {
            WriteIndented = true,
            // Readable "->" and "+" in the text fields; the file is never embedded in HTML.
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        }) + "\n");
        return path;
    }
}
