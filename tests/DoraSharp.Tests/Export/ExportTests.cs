using System.Text.Json;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Export;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Onnx;
using DoraSharp.Tests.Cli;
using Xunit;

namespace DoraSharp.Tests.Export;

/// <summary>
/// `dora export` (issue 18): the exported folder, its graph, ONNX Runtime against TorchSharp, and what happens to the
/// output folder when the input is bad or the export fails midway.
/// </summary>
[Collection(ExportRuns.Name)]
public sealed class ExportTests(ExportFixture fixture)
{
    private const double Tolerance = 1e-4;

    private static string[] Entries(string folder) =>
        Directory.EnumerateFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToArray()!;

    [Fact]
    public void The_folder_holds_the_model_its_tokenizer_and_a_report_within_tolerance()
    {
        Assert.Equal(["export-report.json", "model.json", "model.onnx", "tokenizer_config.json", "vocab.txt"], Entries(fixture.ClassificationModel));
        using var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ClassificationModel, "export-report.json")));
        var difference = report.RootElement.GetProperty("max_abs_difference").GetDouble();
        Assert.InRange(difference, 0, Tolerance);
        // The run's validation texts (4 of 12) plus the fixed tokenizer probes.
        Assert.Equal(4 + RunExporter.ProbeTexts.Length, report.RootElement.GetProperty("texts").GetInt32());
        Assert.Contains("max abs difference ONNX Runtime vs TorchSharp", fixture.ClassificationExportOutput);
        using var model = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture.ClassificationModel, "model.json")));
        Assert.Equal("classification", model.RootElement.GetProperty("kind").GetString());
        Assert.Equal(16, model.RootElement.GetProperty("max_length").GetInt32());
        Assert.Equal(["bad", "good"], model.RootElement.GetProperty("labels").EnumerateArray().Select(l => l.GetString()));
        // Nothing but the two exports and what the fixture wrote: no staging folder left beside them.
        Assert.DoesNotContain(Entries(fixture.Folder), e => e.StartsWith('.'));
    }

    [Fact]
    public void The_graph_carries_the_merged_weights_of_exactly_the_adapted_modules_and_outputs_probabilities()
    {
        var exported = global::Onnx.ModelProto.Parser.ParseFrom(File.ReadAllBytes(Path.Combine(fixture.ClassificationModel, "model.onnx")));
        var pretrained = OnnxParameterMap.Map(MiniLmWeights.ReadPackageModel(), out _).ToDictionary(p => p.InitializerName);
        var changed = new List<string>();
        foreach (var init in exported.Graph.Initializer.Where(i => pretrained.ContainsKey(i.Name)))
        {
            var before = pretrained[init.Name].Values;
            var after = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(init.RawData.Span);
            if (!after.SequenceEqual(before)) changed.Add(pretrained[init.Name].ParameterName);
        }
        // dora train's default targets: query and value of each of the 6 layers.
        var expected = Enumerable.Range(0, 6).SelectMany(l => new[] { $"encoder.layer.{l}.attention.self.query.weight", $"encoder.layer.{l}.attention.self.value.weight" });
        Assert.Equal(expected.Order(StringComparer.Ordinal), changed.Order(StringComparer.Ordinal));
        Assert.Equal(["probabilities"], exported.Graph.Output.Select(o => o.Name));
        // BERT's pooler feeds nothing the run uses: dropped with its weights.
        Assert.DoesNotContain(exported.Graph.Initializer, i => i.Name.StartsWith("pooler.", StringComparison.Ordinal));
    }

    [Fact]
    public void Onnx_predictions_equal_torchsharp_predictions_on_the_validation_set_and_on_tricky_texts()
    {
        var tricky = fixture.File("tricky.csv");
        File.WriteAllLines(tricky, ["text", "\"Price: $5 + tax = <total> & 100%\"", "\"Ångström café, naïve façade\"", "\"中文 and English\"",
            "\"" + string.Join(' ', Enumerable.Repeat("a long text past sixteen word pieces", 10)) + "\""]);
        foreach (var data in new[] { Path.Combine(fixture.ClassificationRun, "validation.jsonl"), tricky })
        {
            var torch = fixture.File("torch.jsonl");
            var onnx = fixture.File("onnx.jsonl");
            ExportFixture.Run("predict", "--run", fixture.ClassificationRun, "--data", data, "--output", torch);
            ExportFixture.Run("predict", "--engine", "onnx", "--model", fixture.ClassificationModel, "--data", data, "--output", onnx);
            var a = File.ReadAllLines(torch);
            var b = File.ReadAllLines(onnx);
            Assert.Equal(a.Length, b.Length);
            Assert.True(a.Length >= 4);
            for (int i = 0; i < a.Length; i++)
            {
                using var x = JsonDocument.Parse(a[i]);
                using var y = JsonDocument.Parse(b[i]);
                Assert.Equal(x.RootElement.GetProperty("text").GetString(), y.RootElement.GetProperty("text").GetString());
                Assert.Equal(x.RootElement.GetProperty("predicted").GetString(), y.RootElement.GetProperty("predicted").GetString());
                foreach (var label in new[] { "bad", "good" })
                    Assert.InRange(y.RootElement.GetProperty("probabilities").GetProperty(label).GetSingle()
                        - x.RootElement.GetProperty("probabilities").GetProperty(label).GetSingle(), -Tolerance, Tolerance);
            }
        }
    }

    [Fact]
    public void Exported_embeddings_equal_the_merged_torchsharp_encoder_and_have_unit_length()
    {
        var manifest = TextRunFiles.ReadManifest(fixture.SimilarityRun, "similarity");
        string[] texts = ["text editor", "plays audio files and playlists", "Ångström: $5 + tax", "中文"];
        float[][] expected;
        using (var encoder = TextRunFiles.LoadEncoder(fixture.SimilarityRun, manifest))
            expected = TextSimilarityTrainer.EmbedAll(encoder, TextSimilarityTrainer.Encode(MiniLmTokenizer.FromPackage(manifest.Tokenizer.MaxLength), texts));
        using var model = OnnxTextModel.Load(fixture.SimilarityModel, threads: 1);
        Assert.Equal(OnnxModelKind.Embedding, model.Kind);
        Assert.Empty(model.Labels);
        var actual = model.Embed(texts);
        Assert.Equal(texts.Length, actual.Count);
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal(384, actual[i].Length);
            for (int j = 0; j < 384; j++) Assert.InRange(actual[i][j] - expected[i][j], -Tolerance, Tolerance);
            Assert.InRange(Math.Sqrt(actual[i].Sum(v => (double)v * v)), 1 - 1e-5, 1 + 1e-5);
        }
        Assert.Throws<InvalidOperationException>(() => model.Classify(texts));
    }

    [Fact]
    public void Similarity_predict_through_onnx_ranks_as_through_torchsharp()
    {
        var torch = fixture.File("ranks-torch.csv");
        var onnx = fixture.File("ranks-onnx.csv");
        ExportFixture.Run("predict", "--task", "similarity", "--run", fixture.SimilarityRun, "--data", fixture.PairsFile, "--output", torch);
        ExportFixture.Run("predict", "--task", "similarity", "--engine", "onnx", "--model", fixture.SimilarityModel, "--data", fixture.PairsFile, "--output", onnx);
        // line, query, rank of the document, top document: equal; the score (last column) within the tolerance.
        static string[][] Rows(string path) => File.ReadAllLines(path).Skip(1).Select(l => l.Split(',')).ToArray();
        var a = Rows(torch);
        var b = Rows(onnx);
        Assert.Equal(a.Length, b.Length);
        for (int i = 0; i < a.Length; i++)
        {
            Assert.Equal(a[i][..^1], b[i][..^1]);
            Assert.InRange(double.Parse(a[i][^1], System.Globalization.CultureInfo.InvariantCulture) - double.Parse(b[i][^1], System.Globalization.CultureInfo.InvariantCulture), -Tolerance, Tolerance);
        }
    }

    [Fact]
    public void An_existing_out_folder_is_refused_without_force_and_left_untouched()
    {
        var target = fixture.File("existing");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "mine");
        CliAssert.UsageError(CliRunner.Run("export", "--run", fixture.ClassificationRun, "--out", target), "already exists", "--force");
        Assert.Equal(["keep.txt"], Entries(target));
        Assert.Equal("mine", File.ReadAllText(Path.Combine(target, "keep.txt")));
        Directory.Delete(target, recursive: true);
    }

    [Fact]
    public void Force_replaces_an_existing_folder_whole()
    {
        var target = fixture.File("replaced");
        Directory.CreateDirectory(target);
        File.WriteAllText(Path.Combine(target, "keep.txt"), "old");
        ExportFixture.Run("export", "--run", fixture.ClassificationRun, "--out", target, "--force");
        Assert.Equal(Entries(fixture.ClassificationModel), Entries(target));
        Assert.DoesNotContain(Entries(fixture.Folder), e => e.StartsWith('.'));
        Directory.Delete(target, recursive: true);
    }

    [Theory]
    [InlineData("written")]
    [InlineData("checked")]
    public void A_fault_during_the_export_leaves_nothing_and_keeps_an_existing_folder(string stage)
    {
        var fresh = fixture.File("fault-" + stage);
        var existing = fixture.File("fault-existing-" + stage);
        Directory.CreateDirectory(existing);
        File.WriteAllText(Path.Combine(existing, "keep.txt"), "old");
        RunExporter.StageHook = s => { if (s == stage) throw new IOException($"simulated fault at {s}"); };
        try
        {
            Assert.Throws<IOException>(() => RunExporter.Export(new ExportOptions { Run = fixture.ClassificationRun, Out = fresh }));
            Assert.Throws<IOException>(() => RunExporter.Export(new ExportOptions { Run = fixture.ClassificationRun, Out = existing, Force = true }));
        }
        finally
        {
            RunExporter.StageHook = null;
        }
        Assert.False(Directory.Exists(fresh));
        Assert.Equal(["keep.txt"], Entries(existing));
        Assert.DoesNotContain(Entries(fixture.Folder), e => e.StartsWith('.'));
        Directory.Delete(existing, recursive: true);
    }

    [Fact]
    public void A_difference_above_the_tolerance_fails_the_export_and_leaves_nothing()
    {
        var target = fixture.File("strict");
        // No float difference is below a negative tolerance, so the check fails whatever the kernels give.
        var e = Assert.Throws<ExportException>(() => RunExporter.Export(new ExportOptions { Run = fixture.ClassificationRun, Out = target, Tolerance = -1 }));
        Assert.Contains("above the tolerance", e.Message);
        Assert.False(Directory.Exists(target));
        Assert.DoesNotContain(Entries(fixture.Folder), e => e.StartsWith('.'));
    }

    [Theory]
    [InlineData("validation.jsonl", "validation.jsonl", "incomplete")]
    [InlineData("adapter/adapter_model.safetensors", "'adapter/adapter_model.safetensors'", "incomplete")]
    [InlineData("run.json", "no run.json", "not a `dora train` run folder")]
    public void An_incomplete_run_is_refused_naming_the_missing_file(string missing, string fragment1, string fragment2)
    {
        var run = CopyRun("incomplete-" + missing.Replace('/', '-'));
        File.Delete(Path.Combine(run, missing));
        var target = fixture.File("out-incomplete");
        CliAssert.UsageError(CliRunner.Run("export", "--run", run, "--out", target), fragment1, fragment2);
        Assert.False(Directory.Exists(target));
        Directory.Delete(run, recursive: true);
    }

    [Fact]
    public void A_run_of_another_format_version_is_refused()
    {
        var run = CopyRun("version");
        var manifest = Path.Combine(run, "run.json");
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"format_version\": 1", "\"format_version\": 99", StringComparison.Ordinal));
        CliAssert.UsageError(CliRunner.Run("export", "--run", run, "--out", fixture.File("out-version")), "format_version 99", "reads version 1");
        Directory.Delete(run, recursive: true);
    }

    [Fact]
    public void Adapted_modules_the_onnx_graph_lacks_are_named()
    {
        var manifest = TextRunFiles.ReadManifest(fixture.ClassificationRun, "classification");
        var all = OnnxParameterMap.Map(MiniLmWeights.ReadPackageModel(), out _).Select(p => p.ParameterName);
        var without = all.Where(p => !p.StartsWith("encoder.layer.5.attention.self.", StringComparison.Ordinal)).ToHashSet(StringComparer.Ordinal);
        var e = Assert.Throws<ExportException>(() => MergedRun.Load(fixture.ClassificationRun, manifest, ["a text"], without));
        Assert.Contains("encoder.layer.5.attention.self.query, encoder.layer.5.attention.self.value", e.Message);
        Assert.DoesNotContain("layer.4", e.Message);
    }

    [Fact]
    public void Predict_with_the_onnx_engine_refuses_bad_option_combinations_and_folders()
    {
        var data = Path.Combine(fixture.ClassificationRun, "validation.jsonl");
        CliAssert.UsageError(CliRunner.Run("predict", "--engine", "onnx", "--data", data), "--engine onnx needs --model");
        CliAssert.UsageError(CliRunner.Run("predict", "--model", fixture.ClassificationModel, "--data", data), "--engine onnx");
        CliAssert.UsageError(CliRunner.Run("predict", "--engine", "onnx", "--model", fixture.SimilarityModel, "--data", data), "embedding (similarity)", "--task is classification");
        CliAssert.UsageError(CliRunner.Run("predict", "--engine", "onnx", "--model", fixture.ClassificationRun, "--data", data), "model.json", "missing");
    }

    [Fact]
    public void A_bad_model_folder_is_reported_naming_the_file()
    {
        var folder = CopyModelWithoutOnnx("bad-model");
        var e = Assert.Throws<OnnxModelException>(() => OnnxTextModel.Load(folder));
        Assert.Contains("model.onnx: missing", e.Message);

        var manifest = Path.Combine(folder, "model.json");
        File.WriteAllText(manifest, File.ReadAllText(manifest).Replace("\"format_version\": 1", "\"format_version\": 7", StringComparison.Ordinal));
        e = Assert.Throws<OnnxModelException>(() => OnnxTextModel.Load(folder));
        Assert.Contains("format_version 7", e.Message);

        File.WriteAllText(manifest, "{ not json");
        e = Assert.Throws<OnnxModelException>(() => OnnxTextModel.Load(folder));
        Assert.Contains("model.json: not valid", e.Message);

        e = Assert.Throws<OnnxModelException>(() => OnnxTextModel.Load(fixture.File("no-such-model")));
        Assert.Contains("no such folder", e.Message);
        Directory.Delete(folder, recursive: true);
    }

    /// <summary>The classification export's small files (not its 90 MB model.onnx) in a new folder.</summary>
    private string CopyModelWithoutOnnx(string name)
    {
        var folder = fixture.File(name);
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.EnumerateFiles(fixture.ClassificationModel).Where(f => !f.EndsWith(".onnx", StringComparison.Ordinal)))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        return folder;
    }

    private string CopyRun(string name)
    {
        var copy = fixture.File(name);
        foreach (var file in Directory.EnumerateFiles(fixture.ClassificationRun, "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(copy, Path.GetRelativePath(fixture.ClassificationRun, file));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(file, to);
        }
        return copy;
    }

    [Fact]
    public void The_deployed_tokenizer_gives_hugging_face_s_ids_on_every_golden_case()
    {
        // A copy of the export whose max length does not truncate, so that every piece of every case is compared.
        var folder = CopyModelWithoutOnnx("untruncated-model");
        File.CreateSymbolicLink(Path.Combine(folder, "model.onnx"), Path.Combine(fixture.ClassificationModel, "model.onnx"));
        foreach (var (file, key) in new[] { ("model.json", "\"max_length\": 16"), ("tokenizer_config.json", "\"model_max_length\": 16") })
            File.WriteAllText(Path.Combine(folder, file), File.ReadAllText(Path.Combine(folder, file)).Replace(key, key[..^2] + "1000000", StringComparison.Ordinal));
        using var golden = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Golden", "MiniLM", "tokenizer-golden.json")));
        using var model = OnnxTextModel.Load(folder);
        Assert.Equal(1_000_000, model.MaxLength);
        int cases = 0;
        foreach (var c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            var text = c.GetProperty("text").GetString()!;
            Assert.True(c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).SequenceEqual(model.Tokenize(text)), $"'{text}'");
            cases++;
        }
        Assert.True(cases >= 130, $"only {cases} golden cases");
        Directory.Delete(folder, recursive: true);
    }

    [Fact]
    public void The_inference_bench_runs_the_three_engines_on_a_run_and_refuses_bad_combinations()
    {
        CliAssert.UsageError(CliRunner.Run("bench", "--inference"), "--inference needs --run");
        CliAssert.UsageError(CliRunner.Run("bench", "--run", fixture.ClassificationRun), "--run is read by --inference only");
        CliAssert.UsageError(CliRunner.Run("bench", "--inference", "--run", fixture.File("no-such-run")), "no such folder");
        // The smallest run: one batch size, one timed step; it exports to a temporary folder and deletes it.
        var (code, error, _) = CliRunner.Run("bench", "--inference", "--run", fixture.ClassificationRun, "--quick", "--infer-batches", "2", "--steps", "1", "--warmup", "0", "--threads", "1");
        Assert.True(code == 0, error);
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.GetTempPath()), d => Path.GetFileName(d).StartsWith("dora-bench-inference-", StringComparison.Ordinal));
    }
}
