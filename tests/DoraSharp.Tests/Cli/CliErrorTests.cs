using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>Bad input ends in exit code 2 and one line on stderr that names the problem, never a stack trace.</summary>
public sealed class CliErrorTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static void AssertUsageError(string[] args, params string[] expectedFragments) =>
        CliAssert.UsageError(CliRunner.Run(args), expectedFragments);

    [Fact]
    public void Unknown_dataset() =>
        AssertUsageError(["demo", "--dataset", "cifar10", "--out", _dir.Path], "cifar10", "mnist", "fashion-mnist");

    [Fact]
    public void Rank_zero() =>
        AssertUsageError(["demo", "--r", "0", "--out", _dir.Path], "--r must be a whole number from 1 to 1024 (got '0')");

    [Fact]
    public void Missing_data_folder()
    {
        var missing = Path.Combine(_dir.Path, "no-such-folder");
        AssertUsageError(["demo", "--data-dir", missing, "--out", _dir.File("out")], missing, "does not exist");
        Assert.False(Directory.Exists(_dir.File("out")), "the output folder is created only once the data has loaded");
    }

    [Fact]
    public void Unwritable_output_folder()
    {
        // A folder inside a regular file can never be created, whoever runs the test (root included).
        var file = _dir.File("a-file");
        File.WriteAllText(file, "not a folder");
        var target = Path.Combine(file, "out");
        AssertUsageError(["demo", "--out", target], "--out", target, "cannot create the folder");
    }

    [Theory]
    [InlineData("--seeds", "0", "--seeds must be a whole number from 1 to 100 (got '0')")]
    [InlineData("--lr", "-0.1", "--lr must be a number > 0 and <= 10 (got '-0.1')")]
    [InlineData("--batch-size", "0", "--batch-size must be a whole number from 1 to 65536 (got '0')")]
    [InlineData("--epochs", "0", "--epochs must be a whole number from 1 to 1000 (got '0')")]
    [InlineData("--max-grad-norm", "0", "--max-grad-norm must be a number > 0 and <= 1000000 (got '0')")]
    [InlineData("--task", "rotate", "rotate")]
    [InlineData("--model", "resnet", "resnet")]
    [InlineData("--optimizer", "sgd", "sgd")]
    [InlineData("--threads", "0", "--threads must be a whole number from 1 to 256 (got '0')")]
    public void Bad_values(string option, string value, string fragment) =>
        AssertUsageError(["demo", option, value, "--out", _dir.Path], fragment);

    [Theory]
    [InlineData("demo", "--hidden1")]
    [InlineData("demo", "--hidden2")]
    [InlineData("compare", "--hidden1")]
    public void An_mlp_width_with_the_cnn_is_refused(string command, string option) =>
        AssertUsageError([command, "--model", "cnn", option, "16", "--out", _dir.Path], option, "--model cnn");

    [Fact]
    public void Mlp_targets_with_the_cnn_are_refused_naming_the_cnns_layers() =>
        AssertUsageError(["demo", "--model", "cnn", "--targets", "layers.0", "--out", _dir.Path], "layers.0", "conv1, conv2, fc");

    [Fact]
    public void Targets_that_match_no_layer_are_refused_before_training() =>
        AssertUsageError(["demo", "--targets", "layers.1", "--out", _dir.Path], "layers.1", "only Linear, Embedding or Conv2d layers");

    [Fact]
    public void Unknown_option() => AssertUsageError(["demo", "--rank", "4"], "--rank");

    [Theory]
    [InlineData("0,2", "'0' is not a whole number from 1 to 1024")]
    [InlineData("2,x", "'x' is not a whole number from 1 to 1024")]
    [InlineData("4,4", "lists 4 twice")]
    public void Bad_ranks(string ranks, string fragment) =>
        AssertUsageError(["compare", "--ranks", ranks, "--out", _dir.Path], fragment);

    [Fact]
    public void Help_documents_every_option_of_demo_and_compare()
    {
        foreach (var command in DoraSharp.Cli.Commands.CommandCatalog.CreateRoot().Subcommands.Where(c => c.Name is "demo" or "compare"))
        {
            var (code, error, output) = CliRunner.Run(command.Name, "--help");
            Assert.Equal(0, code);
            Assert.Equal("", error);
            foreach (var option in command.Options.Where(o => o.Name.StartsWith("--", StringComparison.Ordinal) && o.Name != "--help"))
            {
                Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{command.Name} {option.Name} has no description");
                Assert.Contains(option.Name, output);
            }
        }
    }
}
