using System.Text.Json;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Export;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Onnx;
using DoraSharp.Tests.Cli;
using Xunit;

namespace DoraSharp.Tests.Export;

/// <summary>
/// `dora export --adapter` (issue 18's "an adapter folder plus base"): a bare PEFT adapter for all-MiniLM-L6-v2 —
/// here the similarity run's own adapter/ folder — merged into the shipped encoder and exported as an embedding
/// model, and the inputs it refuses.
/// </summary>
[Collection(ExportRuns.Name)]
public sealed class AdapterExportTests(ExportFixture fixture)
{
    private const double Tolerance = 1e-4;

    private void AssertNothingWritten(string target)
    {
        Assert.False(Directory.Exists(target), $"{target} should not exist");
        Assert.DoesNotContain(Directory.EnumerateFileSystemEntries(fixture.Folder).Select(Path.GetFileName), e => e!.StartsWith('.'));
    }

    [Fact]
    public void The_adapter_export_is_an_embedding_model_checked_on_fixed_texts_within_tolerance()
    {
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.AdapterModel, RunExporter.ReportFile)));
        var r = report.RootElement;
        Assert.Equal("embedding", r.GetProperty("kind").GetString());
        Assert.Equal("embedding", r.GetProperty("output").GetString());
        Assert.Equal("dora", r.GetProperty("method").GetString());
        Assert.Equal(Path.GetFullPath(fixture.SimilarityAdapter), r.GetProperty("run").GetString());
        // Twenty fixed sentences plus the exporter's five tokenizer probes: no validation set to draw from.
        Assert.Equal(25, r.GetProperty("texts").GetInt32());
        Assert.InRange(r.GetProperty("max_abs_difference").GetDouble(), 0, Tolerance);
        Assert.InRange(r.GetProperty("merge_max_abs_difference").GetDouble(), 0, Tolerance);
        // The run adapted query and value in each of the 6 layers: 12 weight tensors differ from the pretrained graph.
        Assert.Equal(12, r.GetProperty("changed_initializers").GetInt32());

        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.AdapterModel, "model.json")));
        var m = manifest.RootElement;
        Assert.Equal("embedding", m.GetProperty("kind").GetString());
        Assert.Equal(0, m.GetProperty("labels").GetArrayLength());
        Assert.Equal(MiniLmTokenizer.DefaultMaxLength, m.GetProperty("max_length").GetInt32());
        Assert.Equal(Path.GetFullPath(fixture.SimilarityAdapter), m.GetProperty("source").GetProperty("adapter").GetString());
        Assert.False(m.GetProperty("source").TryGetProperty("run", out _));
    }

    [Fact]
    public void Adapter_export_embeddings_equal_torchsharp_with_the_adapter_and_the_run_export()
    {
        string[] texts = ["text editor", "plays audio files and playlists", "Ångström: $5 + tax", "中文",
            "a sentence long enough to pass the run's sixteen tokens, so that the adapter export's own maximum length of 128 is what counts here"];
        // TorchSharp, the run's adapter loaded unmerged, at the tokenizer's default length (the adapter export's).
        var runManifest = TextRunFiles.ReadManifest(fixture.SimilarityRun, "similarity");
        float[][] expected;
        using (var encoder = TextRunFiles.LoadEncoder(fixture.SimilarityRun, runManifest))
            expected = TextSimilarityTrainer.EmbedAll(encoder, TextSimilarityTrainer.Encode(MiniLmTokenizer.FromPackage(), texts));

        using var model = OnnxTextModel.Load(fixture.AdapterModel, threads: 1);
        Assert.Equal(OnnxModelKind.Embedding, model.Kind);
        Assert.Empty(model.Labels);
        Assert.Equal(384, model.OutputSize);
        var actual = model.Embed(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(384, actual[i].Length);
            for (int j = 0; j < 384; j++) Assert.InRange(actual[i][j] - expected[i][j], -Tolerance, Tolerance);
            Assert.InRange(Math.Sqrt(actual[i].Sum(v => (double)v * v)), 1 - 1e-5, 1 + 1e-5);
        }
        Assert.Throws<InvalidOperationException>(() => model.Classify(texts));

        // The run's own export merges the same adapter: same embeddings on texts its max length 16 does not truncate.
        using var run = OnnxTextModel.Load(fixture.SimilarityModel, threads: 1);
        var fromRun = run.Embed(texts[..4]);
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 384; j++) Assert.InRange(actual[i][j] - fromRun[i][j], -Tolerance, Tolerance);
    }

    [Fact]
    public void Run_and_adapter_together_or_neither_are_refused_before_any_work()
    {
        var target = fixture.File("out-both");
        CliAssert.UsageError(CliRunner.Run("export", "--run", fixture.SimilarityRun, "--adapter", fixture.SimilarityAdapter, "--out", target),
            "--run and --adapter exclude each other");
        CliAssert.UsageError(CliRunner.Run("export", "--out", target), "give --run DIR", "or --adapter DIR");
        AssertNothingWritten(target);
        var e = Assert.Throws<ArgumentException>(() => RunExporter.Export(new ExportOptions { Run = fixture.SimilarityRun, Adapter = fixture.SimilarityAdapter, Out = target }));
        Assert.Contains("not both", e.Message);
        Assert.Throws<ArgumentException>(() => RunExporter.Export(new ExportOptions { Out = target }));
        AssertNothingWritten(target);
    }

    [Theory]
    [InlineData("no-config", "adapter_config.json")]
    [InlineData("config-not-json", "adapter_config.json")]
    [InlineData("no-weights", "adapter_model.safetensors")]
    [InlineData("truncated-weights", "adapter_model.safetensors")]
    public void A_malformed_adapter_folder_is_refused_naming_the_file_and_leaves_nothing(string fault, string file)
    {
        var adapter = fixture.File("adapter-" + fault);
        Directory.CreateDirectory(adapter);
        foreach (var f in Directory.EnumerateFiles(fixture.SimilarityAdapter))
            File.Copy(f, Path.Combine(adapter, Path.GetFileName(f)));
        var path = Path.Combine(adapter, file);
        switch (fault)
        {
            case "no-config" or "no-weights": File.Delete(path); break;
            case "config-not-json": File.WriteAllText(path, "{ \"r\": 8, "); break;
            default: File.WriteAllBytes(path, File.ReadAllBytes(path)[..100]); break;
        }
        var target = fixture.File("out-" + fault);
        CliAssert.UsageError(CliRunner.Run("export", "--adapter", adapter, "--out", target), file);
        AssertNothingWritten(target);
        Directory.Delete(adapter, recursive: true);
    }

    [Fact]
    public void A_missing_adapter_folder_and_an_existing_out_are_refused()
    {
        var target = fixture.File("out-missing-adapter");
        CliAssert.UsageError(CliRunner.Run("export", "--adapter", fixture.File("no-such-adapter"), "--out", target), "--adapter", "no-such-adapter", "no such folder");
        AssertNothingWritten(target);

        var existing = fixture.File("existing-adapter-out");
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "keep.txt"), "mine");
        CliAssert.UsageError(CliRunner.Run("export", "--adapter", fixture.SimilarityAdapter, "--out", existing), "already exists", "--force");
        Assert.Equal("mine", File.ReadAllText(Path.Combine(existing, "keep.txt")));
        Assert.Single(Directory.EnumerateFileSystemEntries(existing));
        Directory.Delete(existing, recursive: true);
    }

    [Fact]
    public void A_classification_run_s_adapter_is_refused_pointing_to_its_run_folder()
    {
        var target = fixture.File("out-classifier-adapter");
        CliAssert.UsageError(CliRunner.Run("export", "--adapter", Path.Combine(fixture.ClassificationRun, "adapter"), "--out", target),
            "adapter_config.json does not fit", "(modules_to_save)", "saved over a classifier", "--run");
        AssertNothingWritten(target);
    }

    [Fact]
    public void Adapted_modules_the_onnx_graph_lacks_are_named_for_an_adapter_too()
    {
        var all = OnnxParameterMap.Map(MiniLmWeights.ReadPackageModel(), out _).Select(p => p.ParameterName);
        var without = all.Where(p => !p.StartsWith("encoder.layer.2.attention.self.", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        var e = Assert.Throws<ExportException>(() => MergedRun.LoadAdapter(fixture.SimilarityAdapter, ["a text"], without));
        Assert.StartsWith("--adapter " + fixture.SimilarityAdapter, e.Message);
        Assert.Contains("encoder.layer.2.attention.self.query, encoder.layer.2.attention.self.value", e.Message);
        Assert.DoesNotContain("layer.3", e.Message);
    }
}
