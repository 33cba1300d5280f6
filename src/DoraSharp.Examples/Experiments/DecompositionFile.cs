using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using DoraSharp.IO;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// Writes a <see cref="DecompositionResult"/> as <c>decomposition.csv</c> (one row per method, layer and
/// checkpoint) and <c>decomposition.json</c> (the same points, the fit per method and the settings), each
/// replaced atomically as <see cref="ResultsFile"/> does.
/// </summary>
public static class DecompositionFile
{
    /// <summary>Columns <c>method,layer,checkpoint,step,delta_d,delta_m</c>.</summary>
    public static void WriteCsv(string path, DecompositionResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var csv = new StringBuilder("method,layer,checkpoint,step,delta_d,delta_m\n");
        foreach (var p in result.Points)
            csv.Append(CultureInfo.InvariantCulture, $"{p.Method},{p.Layer},{p.Checkpoint},{p.Step},{p.DeltaDirection:R},{p.DeltaMagnitude:R}\n");
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(csv.ToString())));
    }

    /// <summary>The settings, slope and Pearson r per method (null where undefined), and every point.</summary>
    public static void WriteJson(string path, DecompositionResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        // Built as a DOM rather than serialised from anonymous types: no reflection, so trimmed and AOT apps write it too.
        var json = new JsonObject
        {
            ["command"] = "analyze",
            ["dataset"] = result.Data.Dataset,
            ["task"] = result.Settings.Task.ToString().ToLowerInvariant(),
            ["seed"] = result.Settings.Seed,
            ["r"] = result.Rank,
            ["lora_alpha"] = result.Alpha,
            ["checkpoints"] = result.Checkpoints,
            ["fits"] = new JsonObject(DecompositionResult.Methods.Select(m =>
            {
                var f = result.Fit(m);
                return KeyValuePair.Create(m, (JsonNode?)new JsonObject { ["slope"] = Finite(f.Slope), ["pearson"] = Finite(f.Pearson), ["points"] = f.Count });
            })),
            ["points"] = new JsonArray(result.Points.Select(p => (JsonNode?)new JsonObject
            {
                ["method"] = p.Method, ["layer"] = p.Layer, ["checkpoint"] = p.Checkpoint, ["step"] = p.Step,
                ["delta_d"] = p.DeltaDirection, ["delta_m"] = p.DeltaMagnitude,
            }).ToArray()),
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
        AtomicFile.Write(path, stream => stream.Write(Encoding.UTF8.GetBytes(json)));
    }

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;
}
