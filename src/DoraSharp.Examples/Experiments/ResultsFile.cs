using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using DoraSharp.IO;
using DoraSharp.Training;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// Writes an <see cref="ExperimentResult"/> as <c>results.json</c> (every number of the summary table, per seed,
/// plus the settings) and the loss of every step as <c>losses.csv</c>. Both are replaced atomically.
/// </summary>
public static class ResultsFile
{
    // Relaxed escaping keeps "°" and ">>" readable; the file is data, never embedded in HTML.
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The JSON document: settings, data, pretraining, and one entry per arm (accuracy per seed, mean, std, images evaluated, parameters, train time).</summary>
    /// <param name="result">What the experiment measured.</param>
    /// <param name="command">The command that ran it, e.g. "demo" or "compare".</param>
    public static JsonObject ToJson(ExperimentResult result, string command)
    {
        ArgumentNullException.ThrowIfNull(result);
        var s = result.Settings;
        return new JsonObject
        {
            ["command"] = command,
            ["created_utc"] = DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            ["versions"] = new JsonObject
            {
                ["dorasharp"] = Version(typeof(LoraModel).Assembly),
                ["torchsharp"] = Version(typeof(TorchSharp.torch).Assembly),
                ["dotnet"] = Environment.Version.ToString(),
            },
            ["runtime"] = new JsonObject
            {
                ["torch_threads"] = TorchSharp.torch.get_num_threads(),
                ["processor_count"] = Environment.ProcessorCount,
            },
            ["settings"] = new JsonObject
            {
                ["task"] = s.Task.ToString().ToLowerInvariant(),
                ["seeds"] = Array(s.SeedValues.Select(v => JsonValue.Create(v))),
                ["model"] = s.ModelDescription,
                ["model_kind"] = s.Model.ToString().ToLowerInvariant(),
                ["hidden1"] = s.Model == ExperimentModel.Mlp ? s.Hidden1 : null,
                ["hidden2"] = s.Model == ExperimentModel.Mlp ? s.Hidden2 : null,
                ["pretrain_epochs"] = s.PretrainEpochs,
                ["fine_tune_epochs"] = s.FineTuneEpochs,
                ["batch_size"] = s.Training.BatchSize,
                ["learning_rate"] = s.Training.LearningRate,
                ["optimizer"] = s.Training.Optimizer.ToString().ToLowerInvariant(),
                ["weight_decay"] = s.Training.WeightDecay,
                ["lr_schedule"] = s.Training.Schedule.ToString().ToLowerInvariant(),
                ["warmup_steps"] = s.Training.WarmupSteps,
                ["max_grad_norm"] = s.Training.MaxGradNorm,
                ["on_non_finite_loss"] = s.Training.OnNonFiniteLoss == NonFiniteLossPolicy.Stop ? "stop" : "skip",
                ["target_modules"] = Array(s.TargetModules.Select(t => JsonValue.Create(t))),
                ["seed_use"] = "torch.manual_seed(seed) builds the model; data order of pretraining SplitMix64.Derive(seed, 0), " +
                               "of fine-tuning Derive(seed, 1); torch.manual_seed(Derive(seed, 2) >> 1) before adapters are attached",
            },
            ["data"] = new JsonObject
            {
                ["dataset"] = result.Data.Dataset,
                ["fine_tune_domain"] = result.Data.FineTuneDomain,
                ["train_images"] = result.Data.TrainImages,
                ["test_images"] = result.Data.TestImages,
                ["train_source"] = result.Data.TrainSource,
                ["test_source"] = result.Data.TestSource,
            },
            ["pretraining"] = new JsonObject
            {
                ["evaluated_on"] = "the test split as it is (not shifted)",
                ["parameters"] = result.Pretraining.Parameters,
                ["accuracy"] = Summary(result.Pretraining.Accuracy),
                ["correct_per_seed"] = Array(result.Pretraining.Runs.Select(r => JsonValue.Create(r.Test.Correct))),
                ["evaluated_images"] = result.Pretraining.EvaluatedImages,
                ["train_seconds"] = Summary(result.Pretraining.TrainSeconds),
            },
            ["methods"] = Array(result.Arms.Select(Arm)),
        };
    }

    /// <summary>Writes <see cref="ToJson"/> to <paramref name="path"/>, atomically.</summary>
    /// <exception cref="IOException">The file could not be written; the message names it.</exception>
    public static void Write(string path, ExperimentResult result, string command)
    {
        var json = ToJson(result, command).ToJsonString(Indented) + "\n";
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(json)));
    }

    /// <summary>
    /// Writes the loss of every training step as CSV with the columns <c>phase,seed,step,loss</c> (phase is
    /// "pretraining" or an arm's slug such as "dora-r4"; step is 1-based), atomically.
    /// </summary>
    public static void WriteLosses(string path, ExperimentResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var csv = new StringBuilder("phase,seed,step,loss\n");
        void Add(string phase, IEnumerable<SeedRun> runs)
        {
            foreach (var run in runs)
                for (var i = 0; i < run.Losses.Count; i++)
                    csv.Append(CultureInfo.InvariantCulture, $"{phase},{run.Seed},{i + 1},{run.Losses[i]:R}\n");
        }
        Add("pretraining", result.Pretraining.Runs);
        foreach (var arm in result.Arms) Add(arm.Arm.Slug, arm.Runs);
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(csv.ToString())));
    }

    private static JsonObject Arm(ArmResult arm) => new()
    {
        ["method"] = arm.Arm.Method.ToString().ToLowerInvariant(),
        ["label"] = arm.Arm.Label,
        ["rank"] = arm.Arm.IsAdapter ? arm.Arm.Rank : null,
        ["alpha"] = arm.Arm.IsAdapter ? arm.Arm.Alpha : null,
        ["trainable_parameters"] = arm.TrainableParameters,
        ["total_parameters"] = arm.TotalParameters,
        ["trainable_percent"] = System.Math.Round(arm.TrainablePercent, 4),
        ["accuracy"] = Summary(arm.Accuracy),
        ["correct_per_seed"] = Array(arm.Runs.Select(r => JsonValue.Create(r.Test.Correct))),
        ["evaluated_images"] = arm.EvaluatedImages,
        ["train_seconds"] = Summary(arm.TrainSeconds),
    };

    private static JsonObject Summary(Summary summary) => new()
    {
        ["per_seed"] = Array(summary.Values.Select(v => JsonValue.Create(v))),
        ["mean"] = summary.Mean,
        ["std"] = summary.Std,
    };

    private static JsonArray Array(IEnumerable<JsonNode?> items) => new(items.ToArray());

    private static string Version(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? assembly.GetName().Version?.ToString() ?? "unknown";
}
