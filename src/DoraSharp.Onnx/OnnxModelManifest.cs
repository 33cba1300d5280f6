using System.Text.Json.Serialization;

namespace DoraSharp.Onnx;

/// <summary>
/// <c>model.json</c>, the description of a folder written by <c>dora export</c>: what the graph outputs, the labels,
/// the tokenizer's files and length. <see cref="FormatVersion"/> changes whenever a reader of version N could misread
/// a folder; <see cref="OnnxTextModel.Load"/> refuses versions it does not know. Layout: docs/deploy.md.
/// </summary>
internal sealed record OnnxModelManifest
{
    /// <summary>The value of <see cref="Format"/>.</summary>
    public const string FormatName = "dorasharp-onnx-model";

    /// <summary>The version this code writes and reads.</summary>
    public const int CurrentVersion = 1;

    /// <summary>The manifest's file name.</summary>
    public const string FileName = "model.json";

    /// <summary>Always <see cref="FormatName"/>.</summary>
    public string Format { get; init; } = FormatName;

    /// <summary>The folder layout's version.</summary>
    public int FormatVersion { get; init; } = CurrentVersion;

    /// <summary><c>classification</c> or <c>embedding</c>.</summary>
    public required string Kind { get; init; }

    /// <summary>Class labels, index = output column (classification); empty for embeddings.</summary>
    public IReadOnlyList<string> Labels { get; init; } = [];

    /// <summary>Width of the output: the number of labels, or the embedding size.</summary>
    public required int OutputSize { get; init; }

    /// <summary>Tokens per text, [CLS] and [SEP] included; longer texts lose their tail.</summary>
    public required int MaxLength { get; init; }

    /// <summary>How token embeddings become one vector, as done inside the graph.</summary>
    public required string Pooling { get; init; }

    /// <summary>The ONNX file.</summary>
    public string ModelFile { get; init; } = "model.onnx";

    /// <summary>The graph's int64 <c>(batch, tokens)</c> inputs.</summary>
    public IReadOnlyList<string> Inputs { get; init; } = ["input_ids", "attention_mask", "token_type_ids"];

    /// <summary>The graph's one float output, <c>(batch, <see cref="OutputSize"/>)</c>.</summary>
    public required string Output { get; init; }

    /// <summary>The WordPiece vocabulary (one token a line, id = line number).</summary>
    public string Vocabulary { get; init; } = "vocab.txt";

    /// <summary>The tokenizer's settings, Hugging Face's <c>tokenizer_config.json</c> names.</summary>
    public string TokenizerConfig { get; init; } = "tokenizer_config.json";

    /// <summary>Where the model came from (run folder, task, method, base model).</summary>
    public IReadOnlyDictionary<string, string> Source { get; init; } = new Dictionary<string, string>();

    /// <summary>The tool that wrote the folder.</summary>
    public string CreatedBy { get; init; } = "";
}

/// <summary>
/// The BERT tokenizer settings of an exported folder, in Hugging Face's <c>tokenizer_config.json</c> names so that
/// Python's <c>BertTokenizerFast.from_pretrained(DIR)</c> reads the same folder.
/// </summary>
internal sealed record BertTokenizerConfig
{
    /// <summary>Hugging Face's tokenizer class.</summary>
    public string TokenizerClass { get; init; } = "BertTokenizer";
    /// <summary>Lower-case the text (all-MiniLM-L6-v2: true).</summary>
    public bool DoLowerCase { get; init; } = true;
    /// <summary>Strip accents; null follows <see cref="DoLowerCase"/> (HF's rule).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>Put spaces around CJK ideographs.</summary>
    public bool TokenizeChineseChars { get; init; } = true;
    /// <summary>Truncation length.</summary>
    public required int ModelMaxLength { get; init; }
    /// <summary>Unknown token.</summary>
    public string UnkToken { get; init; } = "[UNK]";
    /// <summary>Sentence start token.</summary>
    public string ClsToken { get; init; } = "[CLS]";
    /// <summary>Sentence end token.</summary>
    public string SepToken { get; init; } = "[SEP]";
    /// <summary>Padding token.</summary>
    public string PadToken { get; init; } = "[PAD]";
    /// <summary>Mask token.</summary>
    public string MaskToken { get; init; } = "[MASK]";
}

/// <summary>System.Text.Json source generation for the folder's JSON files (no reflection, trimming-safe).</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.Never)]
[JsonSerializable(typeof(OnnxModelManifest))]
[JsonSerializable(typeof(BertTokenizerConfig))]
internal sealed partial class OnnxModelJson : JsonSerializerContext;
