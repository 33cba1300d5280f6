using System.Text.Json.Serialization;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// System.Text.Json source generation for the worked example's own file, a finished phase's <c>phase.json</c>
/// (<see cref="PhaseRecord"/>): written and read without reflection, in trimmed and Native AOT applications too
/// (issue 13). The options are the ones the file always had: indented, property names as declared, and NaN/Infinity
/// allowed (a skipped step's loss is NaN).
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(PhaseRecord))]
internal sealed partial class ExamplesJsonContext : JsonSerializerContext;
