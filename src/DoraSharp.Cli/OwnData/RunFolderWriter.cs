using System.Text;
using System.Text.Json;
using DoraSharp.IO;
using DoraSharp.MiniLM.OwnData;

namespace DoraSharp.Cli.OwnData;

/// <summary>The non-weight files of a `dora train` run: run.json, results.json, README.txt, the validation data and predictions.</summary>
internal static class RunFolderWriter
{
    // The source-generated context with readable apostrophes and non-ASCII labels (the files are never embedded in HTML).
    public static readonly OwnDataJson Json = new(new System.Text.Json.JsonSerializerOptions(OwnDataJson.Default.Options)
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public static void WriteManifest(string folder, TextRunManifest manifest) =>
        File.WriteAllBytes(Path.Combine(folder, TextRunFiles.ManifestFile), JsonSerializer.SerializeToUtf8Bytes(manifest, Json.TextRunManifest));

    public static void WriteResults(string folder, TextRunResults results) =>
        File.WriteAllBytes(Path.Combine(folder, TextRunFiles.ResultsFile), JsonSerializer.SerializeToUtf8Bytes(results, Json.TextRunResults));

    /// <summary>The examples as JSON Lines objects of the given columns (what `dora predict --data` reads back).</summary>
    public static void WriteJsonLines(string path, IReadOnlyList<string> columns, IReadOnlyList<IReadOnlyList<string>> values)
    {
        using var stream = File.Create(path);
        for (int i = 0; i < values[0].Count; i++)
        {
            using (var writer = new Utf8JsonWriter(stream))
            {
                writer.WriteStartObject();
                for (int c = 0; c < columns.Count; c++) writer.WriteString(columns[c], values[c][i]);
                writer.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        }
    }

    /// <summary>
    /// One JSON object per example: its line in the source file, text, true label (when known), predicted label and
    /// every class's probability (float32 written in shortest round-trip form, so reading it back gives the same bits).
    /// </summary>
    public static void WritePredictionsJsonLines(Stream stream, IReadOnlyList<string> labels, IReadOnlyList<string> texts,
        IReadOnlyList<string?>? truth, IReadOnlyList<int>? lines, float[][] probabilities)
    {
        var predicted = TextClassifierTrainer.ArgMax(probabilities);
        for (int i = 0; i < texts.Count; i++)
        {
            using (var writer = new Utf8JsonWriter(stream))
            {
                writer.WriteStartObject();
                if (lines is not null) writer.WriteNumber("line", lines[i]);
                writer.WriteString("text", texts[i]);
                if (truth?[i] is { } label) writer.WriteString("label", label);
                writer.WriteString("predicted", labels[predicted[i]]);
                writer.WriteStartObject("probabilities");
                for (int c = 0; c < labels.Count; c++) writer.WriteNumber(labels[c], probabilities[i][c]);
                writer.WriteEndObject();
                writer.WriteEndObject();
            }
            stream.WriteByte((byte)'\n');
        }
    }

    /// <summary>The same as CSV (RFC 4180): line, text, label (when known), predicted, then one p:&lt;label&gt; column per class.</summary>
    public static void WritePredictionsCsv(TextWriter writer, IReadOnlyList<string> labels, IReadOnlyList<string> texts,
        IReadOnlyList<string?>? truth, IReadOnlyList<int>? lines, float[][] probabilities)
    {
        var predicted = TextClassifierTrainer.ArgMax(probabilities);
        var header = new List<string>();
        if (lines is not null) header.Add("line");
        header.Add("text");
        if (truth is not null) header.Add("label");
        header.Add("predicted");
        header.AddRange(labels.Select(l => "p:" + l));
        writer.Write(string.Join(",", header.Select(Quote)) + "\r\n");
        for (int i = 0; i < texts.Count; i++)
        {
            var row = new List<string>();
            if (lines is not null) row.Add(lines[i].ToString(System.Globalization.CultureInfo.InvariantCulture));
            row.Add(texts[i]);
            if (truth is not null) row.Add(truth[i] ?? "");
            row.Add(labels[predicted[i]]);
            row.AddRange(probabilities[i].Select(p => p.ToString("R", System.Globalization.CultureInfo.InvariantCulture)));
            writer.Write(string.Join(",", row.Select(Quote)) + "\r\n");
        }
    }

    /// <summary>RFC 4180 quoting: a field with a comma, quote or line break is quoted and its quotes doubled.</summary>
    public static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    public static void WriteReadme(string folder, TextRunManifest manifest)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"A `dora train` run ({manifest.CreatedBy}).");
        sb.AppendLine($"Format: {manifest.Format}, version {manifest.FormatVersion} (run.json). Task: {manifest.Task}. Method: {manifest.Method}.");
        sb.AppendLine($"Base model: {manifest.BaseModel} ({manifest.BaseWeights}); {manifest.Pooling}.");
        if (manifest.Labels.Count > 0) sb.AppendLine($"Labels (class index order): {string.Join(", ", manifest.Labels)}.");
        sb.AppendLine($"Tokenizer: WordPiece, {manifest.Tokenizer.Normalizer}; at most {manifest.Tokenizer.MaxLength} tokens with [CLS] and [SEP]; longer texts lose their tail.");
        sb.AppendLine();
        sb.AppendLine("Files:");
        foreach (var (file, what) in manifest.Files) sb.AppendLine($"  {file}: {what}");
        sb.AppendLine();
        sb.AppendLine(manifest.Task == "classification"
            ? $"Use it: dora predict --run <this folder> --data texts.csv --output predictions.csv"
            : $"Use it: dora predict --task similarity --run <this folder> --data pairs.jsonl");
        if (manifest.Method is "lora" or "dora")
            sb.AppendLine(manifest.Task == "classification"
                ? "In Python: PEFT's PeftModel.from_pretrained over a torch module with fields 'bert' (transformers.BertModel of the base model) and 'classifier' (nn.Linear(384, classes)) applied to the attention-mask mean of bert(...).last_hidden_state."
                : "In Python: PeftModel.from_pretrained(BertModel.from_pretrained(\"sentence-transformers/all-MiniLM-L6-v2\"), \"<this folder>/adapter\"), then mean pooling and L2 normalisation as sentence-transformers does.");
        File.WriteAllText(Path.Combine(folder, TextRunFiles.ReadmeFile), sb.ToString());
    }
}
