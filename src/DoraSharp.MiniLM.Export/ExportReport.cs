using System.Text.Json.Serialization;

namespace DoraSharp.MiniLM.Export;

/// <summary>
/// <c>export-report.json</c>: what was exported and how closely ONNX Runtime on the written <c>model.onnx</c> agrees
/// with TorchSharp on the merged model.
/// </summary>
public sealed record ExportReport
{
    /// <summary>The output folder (full path).</summary>
    public required string Folder { get; init; }
    /// <summary>The run folder, or the adapter folder, exported (full path).</summary>
    public required string Run { get; init; }
    /// <summary><c>classification</c> or <c>embedding</c>.</summary>
    public required string Kind { get; init; }
    /// <summary>The fine-tuning method: <c>lora</c>, <c>dora</c>, <c>frozen</c> or <c>full</c>.</summary>
    public required string Method { get; init; }
    /// <summary>The graph's output compared: <c>probabilities</c> or <c>embedding</c>.</summary>
    public required string Output { get; init; }
    /// <summary>Texts compared.</summary>
    public required int Texts { get; init; }
    /// <summary>Largest |ONNX Runtime - TorchSharp (merged)| over every output value of every text.</summary>
    public required double MaxAbsDifference { get; init; }
    /// <summary>The limit <see cref="MaxAbsDifference"/> had to stay within.</summary>
    public required double Tolerance { get; init; }
    /// <summary>Texts whose arg-max class differs between the two (classification; 0 otherwise).</summary>
    public required int ArgMaxDisagreements { get; init; }
    /// <summary>Largest |TorchSharp merged - TorchSharp with the adapter unmerged|: what merging itself changed (0 without an adapter).</summary>
    public required double MergeMaxAbsDifference { get; init; }
    /// <summary>Weight initializers of the package's graph whose values the run changed.</summary>
    public required int ChangedInitializers { get; init; }
    /// <summary>Weight initializers in the exported graph.</summary>
    public required int WeightInitializers { get; init; }
}

/// <summary>System.Text.Json source generation for <see cref="ExportReport"/>.</summary>
[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ExportReport))]
public sealed partial class ExportJson : JsonSerializerContext;
