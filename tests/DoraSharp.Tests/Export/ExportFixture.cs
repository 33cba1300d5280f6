using System.Text;
using System.Text.Json.Nodes;
using DoraSharp.Tests.Cli;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Export;

/// <summary>
/// One tiny classification run and one tiny similarity run (`dora train`, a dozen texts, max length 16, one epoch
/// at a learning rate high enough that the DoRA adapter moves the weights), each exported once with `dora export`,
/// and the similarity run's adapter folder exported once more on its own (`dora export --adapter`); the export tests
/// share them because MiniLM is 22 M parameters and the machine is shared.
/// </summary>
public sealed class ExportFixture : IDisposable
{
    private readonly TempDirectory _dir = new();

    public ExportFixture()
    {
        var train = _dir.File("train.csv");
        var sb = new StringBuilder("text,label\n");
        string[] good = ["great product, works well", "I love it", "excellent quality", "very happy with this", "fantastic", "superb and fast"];
        string[] bad = ["terrible, broke in a day", "I hate it", "awful quality", "very unhappy with this", "never again", "slow and buggy"];
        foreach (var t in good) sb.Append($"\"{t}\",good\n");
        foreach (var t in bad) sb.Append($"\"{t}\",bad\n");
        System.IO.File.WriteAllText(train, sb.ToString());
        Run("train", "--data", train, "--out", ClassificationRun, "--epochs", "1", "--max-length", "16", "--batch", "4",
            "--validation-split", "0.34", "--lr", "0.05", "--seed", "3");
        (_, _, ClassificationExportOutput) = Run("export", "--run", ClassificationRun, "--out", ClassificationModel);

        var pairs = _dir.File("pairs.jsonl");
        string[][] rows =
        [
            ["text editor", "a program to edit plain text files"], ["web browser", "a program to view pages on the web"],
            ["image viewer", "shows pictures and photos"], ["music player", "plays audio files and playlists"],
            ["mail client", "reads and sends electronic mail"], ["compiler", "translates source code to machine code"],
        ];
        System.IO.File.WriteAllLines(pairs, rows.Select(r => new JsonObject { ["query"] = r[0], ["document"] = r[1] }.ToJsonString()));
        Run("train", "--task", "similarity", "--data", pairs, "--out", SimilarityRun, "--epochs", "1", "--max-length", "16", "--batch", "4",
            "--validation-split", "0.34", "--lr", "0.05", "--seed", "3");
        Run("export", "--run", SimilarityRun, "--out", SimilarityModel);
        Run("export", "--adapter", SimilarityAdapter, "--out", AdapterModel);
        PairsFile = pairs;
    }

    /// <summary>The scratch folder holding the runs, the exports and the tests' own files.</summary>
    public string Folder => _dir.Path;

    /// <summary>A path inside <see cref="Folder"/>.</summary>
    public string File(string name) => _dir.File(name);

    /// <summary>The classification run (DoRA, labels bad and good).</summary>
    public string ClassificationRun => _dir.File("cls-run");

    /// <summary>Its export.</summary>
    public string ClassificationModel => _dir.File("cls-model");

    /// <summary>What `dora export` printed on standard output for it.</summary>
    public string ClassificationExportOutput { get; } = "";

    /// <summary>The similarity run (DoRA).</summary>
    public string SimilarityRun => _dir.File("sim-run");

    /// <summary>Its export.</summary>
    public string SimilarityModel => _dir.File("sim-model");

    /// <summary>The similarity run's adapter folder (PEFT format, keys on BertModel): a bare adapter for `dora export --adapter`.</summary>
    public string SimilarityAdapter => Path.Combine(SimilarityRun, "adapter");

    /// <summary>The export of <see cref="SimilarityAdapter"/> alone.</summary>
    public string AdapterModel => _dir.File("adapter-model");

    /// <summary>The similarity run's training pairs.</summary>
    public string PairsFile { get; }

    /// <summary>The repository root (the folder holding DoraSharp.slnx), found from the test's build output.</summary>
    public static string RepositoryRoot { get; } = FindRoot();

    /// <summary>Runs dora in-process and fails the fixture, with dora's error, when it does not exit 0.</summary>
    public static (int Code, string Error, string Output) Run(params string[] args)
    {
        var result = CliRunner.Run(args);
        if (result.ExitCode != 0) throw new InvalidOperationException($"dora {string.Join(' ', args)} exited {result.ExitCode}: {result.Error}");
        return result;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (System.IO.File.Exists(Path.Combine(dir.FullName, "DoraSharp.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No ancestor of {AppContext.BaseDirectory} holds DoraSharp.slnx.");
    }

    public void Dispose() => _dir.Dispose();
}

/// <summary>The export tests share <see cref="ExportFixture"/>; training seeds libtorch's generator, hence <see cref="SeededRuns"/>.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ExportRuns : ICollectionFixture<ExportFixture>
{
    public const string Name = "Exported MiniLM runs";
}
