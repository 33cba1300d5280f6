using System.Text.Json.Nodes;
using System.Text;
using System.Text.Json;
using DoraSharp.MiniLM.OwnData;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora train` and `dora predict` on files the tests write. MiniLM runs are tiny (a dozen texts, max length 16,
/// one epoch) because the machine is shared; they seed libtorch's generator, hence the collection.
/// </summary>
[Collection(SeededRuns.Name)]
public sealed class TrainPredictCommandTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string WriteClassification(string name = "train.csv")
    {
        var sb = new StringBuilder("text,label\n");
        string[] good = ["great product, works well", "I love it", "excellent quality", "very happy with this", "fantastic", "superb and fast"];
        string[] bad = ["terrible, broke in a day", "I hate it", "awful quality", "very unhappy with this", "never again", "slow and buggy"];
        foreach (var t in good) sb.Append($"\"{t}\",good\n");
        foreach (var t in bad) sb.Append($"\"{t}\",bad\n");
        var path = _dir.File(name);
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    [Theory]
    [InlineData("--r", "0", "--r must be a whole number from 1 to 1024 (got '0')")]
    [InlineData("--epochs", "0", "--epochs must be a whole number from 1 to 1000 (got '0')")]
    [InlineData("--lr", "-1", "--lr must be a number > 0 and <= 10 (got '-1')")]
    [InlineData("--validation-split", "1", "--validation-split must be a number > 0 and <= 0.9 (got '1')")]
    [InlineData("--method", "qlora", "qlora")]
    [InlineData("--format", "xml", "--format 'xml' is not one of csv, tsv, jsonl")]
    [InlineData("--max-length", "1", "--max-length must be a whole number from 2 to 512 (got '1')")]
    public void Bad_train_options_exit_2_with_one_line(string option, string value, string expected)
    {
        var data = WriteClassification();
        CliAssert.UsageError(CliRunner.Run("train", "--data", data, "--out", _dir.File("run"), option, value), expected);
        Assert.False(Directory.Exists(_dir.File("run")));
    }

    [Fact]
    public void A_single_class_is_refused_before_anything_is_written()
    {
        var path = _dir.File("one.csv");
        File.WriteAllText(path, "text,label\na,x\nb,x\nc,x\n");
        CliAssert.UsageError(CliRunner.Run("train", "--data", path, "--out", _dir.File("run")), "every row has the label 'x'", "at least two");
        Assert.Equal(["one.csv"], _dir.Entries());
    }

    [Fact]
    public void A_missing_column_names_the_option_and_lists_the_columns_found()
    {
        var data = WriteClassification();
        CliAssert.UsageError(CliRunner.Run("train", "--data", data, "--out", _dir.File("run"), "--label-column", "category"),
            "no column 'category' (--label-column)", "'text', 'label'");
    }

    [Fact]
    public void An_existing_out_folder_is_refused_without_force()
    {
        var data = WriteClassification();
        Directory.CreateDirectory(_dir.File("run"));
        File.WriteAllText(_dir.File("run/keep.txt"), "mine");
        CliAssert.UsageError(CliRunner.Run("train", "--data", data, "--out", _dir.File("run")), "already exists", "--force");
        Assert.Equal("mine", File.ReadAllText(_dir.File("run/keep.txt")));
    }

    [Fact]
    public void Predict_refuses_a_folder_that_is_not_a_run_and_a_run_of_another_format_version()
    {
        Directory.CreateDirectory(_dir.File("half"));
        var data = WriteClassification();
        CliAssert.UsageError(CliRunner.Run("predict", "--run", _dir.File("half"), "--data", data), "no run.json", "half-written");
        File.WriteAllText(_dir.File("half/run.json"), """{"format":"dorasharp-text-run","format_version":99,"task":"classification","method":"dora","pooling":"","tokenizer":{"max_length":16},"training":null,"files":{},"created_by":""}""");
        CliAssert.UsageError(CliRunner.Run("predict", "--run", _dir.File("half"), "--data", data), "format_version 99");
    }

    [Fact]
    public void A_tiny_run_is_self_contained_and_predict_reproduces_its_validation_predictions_exactly()
    {
        var data = WriteClassification();
        var run = _dir.File("run");
        var (code, error, _) = CliRunner.Run("train", "--data", data, "--out", run, "--epochs", "1", "--max-length", "16", "--batch", "4", "--validation-split", "0.34");
        Assert.True(code == 0, error);
        foreach (var file in new[] { "run.json", "README.txt", "results.json", "loss.png", "confusion.png", "validation.jsonl", "validation_predictions.jsonl", "adapter/adapter_config.json", "adapter/adapter_model.safetensors" })
            Assert.True(File.Exists(Path.Combine(run, file)), file);
        Assert.DoesNotContain(_dir.Entries(), e => e.Contains(".partial", StringComparison.Ordinal));
        var manifest = TextRunFiles.ReadManifest(run, "classification");
        Assert.Equal(["bad", "good"], manifest.Labels);
        Assert.Equal("dora", manifest.Method);
        Assert.Equal(16, manifest.Tokenizer.MaxLength);
        using (var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "adapter/adapter_config.json"))))
        {
            Assert.True(config.RootElement.GetProperty("use_dora").GetBoolean());
            Assert.Equal("classifier", config.RootElement.GetProperty("modules_to_save")[0].GetString());
        }

        var output = _dir.File("predictions.jsonl");
        (code, error, _) = CliRunner.Run("predict", "--run", run, "--data", Path.Combine(run, "validation.jsonl"), "--output", output);
        Assert.True(code == 0, error);
        var saved = File.ReadAllLines(Path.Combine(run, "validation_predictions.jsonl"));
        var predicted = File.ReadAllLines(output);
        Assert.Equal(saved.Length, predicted.Length);
        Assert.Equal(4, saved.Length);   // a third of each class's six texts
        for (int i = 0; i < saved.Length; i++)
        {
            using var a = JsonDocument.Parse(saved[i]);
            using var b = JsonDocument.Parse(predicted[i]);
            Assert.Equal(a.RootElement.GetProperty("text").GetString(), b.RootElement.GetProperty("text").GetString());
            Assert.Equal(a.RootElement.GetProperty("predicted").GetString(), b.RootElement.GetProperty("predicted").GetString());
            foreach (var label in manifest.Labels)   // the same weights and batches: the same float32 bits
                Assert.Equal(a.RootElement.GetProperty("probabilities").GetProperty(label).GetSingle(), b.RootElement.GetProperty("probabilities").GetProperty(label).GetSingle());
        }
        using var metrics = JsonDocument.Parse(File.ReadAllText(_dir.File("predictions.metrics.json")));
        Assert.Equal(4, metrics.RootElement.GetProperty("scored").GetInt32());

        // A folder missing a file its run.json lists is incomplete, and said to be.
        File.Delete(Path.Combine(run, "adapter/adapter_model.safetensors"));
        CliAssert.UsageError(CliRunner.Run("predict", "--run", run, "--data", data), "'adapter/adapter_model.safetensors'", "incomplete");
    }

    [Fact]
    public void Predict_reports_labels_the_run_never_saw_instead_of_failing()
    {
        var data = WriteClassification();
        var run = _dir.File("run");
        var (code, error, _) = CliRunner.Run("train", "--data", data, "--out", run, "--epochs", "1", "--max-length", "16", "--method", "frozen", "--validation-split", "0.34");
        Assert.True(code == 0, error);
        Assert.True(File.Exists(Path.Combine(run, "head.safetensors")));
        var test = _dir.File("test.csv");
        File.WriteAllText(test, "text,label\nlovely,good\nmeh,neutral\nmeh again,neutral\n");
        (code, error, _) = CliRunner.Run("predict", "--run", run, "--data", test, "--output", _dir.File("p.csv"));
        Assert.True(code == 0, error);
        using var metrics = JsonDocument.Parse(File.ReadAllText(_dir.File("p.metrics.json")));
        Assert.Equal(1, metrics.RootElement.GetProperty("scored").GetInt32());
        Assert.Equal(2, metrics.RootElement.GetProperty("unknown_labels").GetProperty("neutral").GetInt32());
        var rows = TextTableReader.Read(_dir.File("p.csv"));
        Assert.Equal(["line", "text", "label", "predicted", "p:bad", "p:good"], rows.Columns);
        Assert.Equal(3, rows.Rows.Count);
    }

    [Fact]
    public void A_tiny_similarity_run_ranks_its_pairs_and_predict_scores_it_beside_the_pretrained_model()
    {
        var pairs = _dir.File("pairs.jsonl");
        string[][] rows =
        [
            ["text editor", "a program to edit plain text files"], ["web browser", "a program to view pages on the web"],
            ["image viewer", "shows pictures and photos"], ["music player", "plays audio files and playlists"],
            ["mail client", "reads and sends electronic mail"], ["compiler", "translates source code to machine code"],
        ];
        File.WriteAllLines(pairs, rows.Select(r => new JsonObject { ["query"] = r[0], ["document"] = r[1] }.ToJsonString()));
        var run = _dir.File("search");
        var (code, error, _) = CliRunner.Run("train", "--task", "similarity", "--data", pairs, "--out", run, "--epochs", "1", "--max-length", "16", "--batch", "4", "--validation-split", "0.34");
        Assert.True(code == 0, error);
        Assert.Equal("similarity", TextRunFiles.ReadManifest(run, "similarity").Task);
        (code, error, _) = CliRunner.Run("predict", "--task", "similarity", "--run", run, "--data", pairs, "--output", _dir.File("ranks.csv"));
        Assert.True(code == 0, error);
        using var metrics = JsonDocument.Parse(File.ReadAllText(_dir.File("ranks.metrics.json")));
        foreach (var which in new[] { "ranking", "pretrained_ranking" })
        {
            var m = metrics.RootElement.GetProperty(which);
            Assert.Equal(6, m.GetProperty("queries").GetInt32());
            Assert.InRange(m.GetProperty("mrr").GetDouble(), 1.0 / 6, 1.0);
        }
        var ranks = TextTableReader.Read(_dir.File("ranks.csv"));
        Assert.Equal(6, ranks.Rows.Count);
        // The CSV's ranks and the metrics file agree.
        var mrr = ranks.Rows.Average(r => 1.0 / int.Parse(r["rank_of_document"], System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(metrics.RootElement.GetProperty("ranking").GetProperty("mrr").GetDouble(), mrr, 12);
    }
    [Fact]
    public void A_run_stopped_after_an_epoch_resumes_to_the_same_predictions_as_an_uninterrupted_run()
    {
        var data = WriteClassification();
        string[] Args(string run) => ["train", "--data", data, "--out", run, "--epochs", "2", "--patience", "0", "--max-length", "16", "--batch", "4", "--validation-split", "0.34"];
        var (code, error, _) = CliRunner.Run(Args(_dir.File("whole")));
        Assert.True(code == 0, error);

        var run = _dir.File("stopped");
        Environment.SetEnvironmentVariable(DoraSharp.MiniLM.OwnData.EpochCheckpoint.FaultStopVariable, "1");
        try { (code, error, _) = CliRunner.Run(Args(run)); }
        finally { Environment.SetEnvironmentVariable(DoraSharp.MiniLM.OwnData.EpochCheckpoint.FaultStopVariable, null); }
        Assert.Equal(2, code);
        Assert.False(Directory.Exists(run), "a stopped run leaves no run folder");
        Assert.True(File.Exists(_dir.File(".stopped.partial/checkpoint/progress.json")), "the finished epoch is checkpointed");

        CliAssert.UsageError(CliRunner.Run(Args(run)), "add --resume");
        CliAssert.UsageError(CliRunner.Run([.. Args(run), "--resume", "--seed", "2"]), "--seed");
        CliAssert.UsageError(CliRunner.Run([.. Args(_dir.File("never")), "--resume"]), "no unfinished run");

        (code, error, _) = CliRunner.Run([.. Args(run), "--resume"]);
        Assert.True(code == 0, error);
        Assert.False(Directory.Exists(_dir.File(".stopped.partial")));
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint")));
        // Same process, same thread count, the same ops from the same state: the same bits.
        Assert.Equal(File.ReadAllText(_dir.File("whole/validation_predictions.jsonl")), File.ReadAllText(Path.Combine(run, "validation_predictions.jsonl")));
        Assert.Equal(File.ReadAllBytes(_dir.File("whole/adapter/adapter_model.safetensors")), File.ReadAllBytes(Path.Combine(run, "adapter/adapter_model.safetensors")));
    }
}
