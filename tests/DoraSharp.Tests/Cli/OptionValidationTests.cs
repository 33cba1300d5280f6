using System.CommandLine;
using System.Text.RegularExpressions;
using DoraSharp.Cli.Commands;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// Every option of every command refuses a bad value before any work: exit 2 and one line on stderr naming the option,
/// the value and what is allowed. The numeric cases are generated from the command tree itself, so an option added
/// later is covered without editing this file; the help text states each numeric option's range.
/// </summary>
public sealed class OptionValidationTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static bool IsNumeric(Option option) =>
        (Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType) is var t && (t == typeof(int) || t == typeof(long) || t == typeof(double));

    private static bool IsWhole(Option option) => (Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType) != typeof(double);

    /// <summary>Values no numeric option accepts: every range starts at 0 or above and ends far below these.</summary>
    private static IEnumerable<string> BadNumbers(Option option)
    {
        yield return "x";
        yield return "";
        yield return "-1";
        yield return "99999999999999999999";
        yield return "1e400";
        if (IsWhole(option))
        {
            yield return "1.5";
            yield return "1e3";
            yield return "4294967296";
        }
        else
        {
            yield return "nan";
            yield return "Infinity";
            yield return "1e38";
            yield return "1,5";
        }
    }

    public static TheoryData<string, string, string> NumericCases()
    {
        var data = new TheoryData<string, string, string>();
        foreach (var command in CommandCatalog.All())
            foreach (var option in command.Options.Where(o => IsNumeric(o) && !o.Hidden))
                foreach (var value in BadNumbers(option))
                    data.Add(command.Name, option.Name, value);
        return data;
    }

    [Theory]
    [MemberData(nameof(NumericCases))]
    public void A_bad_number_is_refused_in_one_line_naming_the_option_the_value_and_the_range(string command, string option, string value)
    {
        var line = AssertRefused([command, option, value, .. OutFor(command)], option, value);
        Assert.Matches(new Regex(@"must be a (whole )?number (from \S+ to \S+|> \S+ and <= \S+)"), line);
    }

    /// <summary>The issue's list, and the other list-valued and text options of every command.</summary>
    [Theory]
    [InlineData("demo", "--seeds", "three")]
    [InlineData("demo", "--epochs", "1.5")]
    [InlineData("demo", "--lr", "abc")]
    [InlineData("demo", "--keep", "1e3")]
    [InlineData("demo", "--seeds", "99999999999")]
    [InlineData("demo", "--seeds", "2147483647")]
    [InlineData("demo", "--lr", "1e38")]
    [InlineData("demo", "--alpha", "1e30")]
    [InlineData("compare", "--seeds", "x")]
    [InlineData("analyze", "--seeds", "x")]
    [InlineData("compare", "--ranks", "0,2")]
    [InlineData("compare", "--ranks", "2,x")]
    [InlineData("compare", "--ranks", "4,4")]
    [InlineData("compare", "--ranks", "99999999999")]
    [InlineData("compare", "--ranks", "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17")]
    [InlineData("compare", "--ranks", ",")]
    [InlineData("compare", "--alpha", "1e30")]
    [InlineData("demo", "--seed", "4294967296")]
    [InlineData("demo", "--task", "rotate")]
    [InlineData("demo", "--model", "resnet")]
    [InlineData("demo", "--dataset", "cifar10")]
    [InlineData("demo", "--optimizer", "sgd")]
    [InlineData("demo", "--lr-schedule", "step")]
    [InlineData("demo", "--on-nan", "ignore")]
    [InlineData("demo", "--targets", ",")]
    [InlineData("bench", "--ranks", "0")]
    [InlineData("bench", "--ranks", "x")]
    [InlineData("bench", "--shapes", "3x")]
    [InlineData("bench", "--shapes", "99999999x2")]
    [InlineData("bench", "--shapes", "")]
    [InlineData("bench", "--memory-ranks", "0")]
    [InlineData("minilm-demo", "--seeds", "a")]
    [InlineData("minilm-demo", "--seeds", "1,1")]
    [InlineData("minilm-demo", "--methods", "lora,sgd", "sgd")]
    [InlineData("minilm-demo", "--targets", ",")]
    public void A_bad_value_is_refused_in_one_line_naming_the_option_and_the_value(string command, string option, string value, string? shown = null) =>
        AssertRefused([command, option, value, .. OutFor(command)], option, shown ?? value);

    [Fact]
    public void The_hidden_memory_probe_refuses_bad_arguments_too() =>
        AssertRefused(["bench", "--probe-memory", "3x", "x", "5", "lora"], "--probe-memory", "3x x 5 lora");

    [Fact]
    public void Help_states_the_range_of_every_numeric_option_of_every_command()
    {
        foreach (var command in CommandCatalog.All())
        {
            foreach (var option in command.Options.Where(o => IsNumeric(o) && !o.Hidden))
                Assert.True(option.Description?.Contains("Allowed: ", StringComparison.Ordinal) == true, $"{command.Name} {option.Name}: no range in '{option.Description}'");
            if (command.Hidden || !command.Options.Any(o => IsNumeric(o) && !o.Hidden)) continue;
            var (code, _, output) = CliRunner.Run(command.Name, "--help");
            Assert.Equal(0, code);
            Assert.Contains("Allowed: ", output);
        }
    }

    /// <summary>A folder for commands that write one, so nothing lands in the current folder if a case were accepted.</summary>
    private string[] OutFor(string command) => command switch
    {
        "demo" or "compare" or "analyze" or "minilm-demo" => ["--out", _dir.File("out")],
        "train-fixture" => ["--out", _dir.File("out"), "--checkpoint-dir", _dir.File("checkpoints")],
        "train" => ["--data", _dir.File("train.csv"), "--out", _dir.File("out")],
        "export" => ["--run", _dir.File("run"), "--out", _dir.File("out")],
        _ => [],
    };

    private string AssertRefused(string[] args, string option, string value)
    {
        var (code, error, _) = CliRunner.Run(args);
        Assert.True(code == 2, $"dora {string.Join(' ', args)}: exit {code}, stderr: {error}");
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got {lines.Length}:\n{error}");
        Assert.StartsWith("dora: ", lines[0]);
        Assert.DoesNotContain("Exception", error);
        Assert.Contains(option, lines[0]);
        Assert.Contains($"'{value}'", lines[0]);
        Assert.False(Directory.Exists(_dir.File("out")), "refused before any work: no output folder");
        return lines[0];
    }
}
