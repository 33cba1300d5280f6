using System.Text.Json.Serialization;
using DoraSharp.Training;

namespace DoraSharp.IO;

/// <summary>
/// System.Text.Json source generation for every type the library serialises with <c>JsonSerializer</c>: a checkpoint's
/// <c>trainer.json</c> (<see cref="CheckpointManifest"/>, with its <see cref="TrainingState"/>). The serialisers are
/// generated at compile time, so these files are written and read without reflection: in trimmed and Native AOT
/// applications too (issue 13; with reflection-based serialisation the first checkpoint threw there). The options are the ones the files always had:
/// indented, property names as declared, and NaN/Infinity allowed (a skipped step's loss is NaN). The other JSON the
/// library handles is built or read as a DOM (JsonObject, JsonDocument), which needs no reflection either.
/// </summary>
[JsonSourceGenerationOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
[JsonSerializable(typeof(CheckpointManifest))]
internal sealed partial class LibraryJsonContext : JsonSerializerContext;
