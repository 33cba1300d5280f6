using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using DoraSharp.Onnx;

/// <summary>
/// `DeployConsumer predict MODEL_DIR FILE.jsonl`: classifies the "text" of every line of a JSON Lines file and prints
/// "label<TAB>p0<TAB>p1..." per text (probabilities round-trip), for the test to compare with `dora predict`.
/// A module initializer, so that Service.cs stays exactly the snippet of docs/deploy.md (its top-level statements are
/// the program's entry point): with these arguments the process does this and exits before the service starts.
/// </summary>
internal static class Predict
{
    [ModuleInitializer]
    internal static void RunIfAsked()
    {
        var args = Environment.GetCommandLineArgs().Skip(1).ToArray();
        if (args.Length != 3 || args[0] != "predict") return;
        var texts = File.ReadLines(args[2]).Where(l => l.Trim().Length > 0)
            .Select(l => { using var row = JsonDocument.Parse(l); return row.RootElement.GetProperty("text").GetString()!; }).ToArray();
        using var model = OnnxTextModel.Load(args[1], threads: 1);
        foreach (var p in model.Classify(texts))
            Console.WriteLine(string.Join('\t', [p.Label, .. p.Probabilities.Select(v => v.ToString("R", CultureInfo.InvariantCulture))]));
        Console.Out.Flush();
        Environment.Exit(0);
    }
}
