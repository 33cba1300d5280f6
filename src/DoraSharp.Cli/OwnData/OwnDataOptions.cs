using System.CommandLine;
using System.Globalization;
using DoraSharp.Cli.Commands;
using DoraSharp.MiniLM.OwnData;

namespace DoraSharp.Cli.OwnData;

/// <summary>
/// Option builders for `dora train` and `dora predict`, each validating its own value so that a bad option is one
/// line on stderr and exit code 2 (System.CommandLine reports validator errors before the command runs).
/// </summary>
internal static class OwnDataOptions
{
    // The numeric and choice options go through OptionRules, as every other command's: one message shape, ranges in the help.
    public static Option<int> Int(string name, int defaultValue, int minimum, int maximum, string description) =>
        OptionRules.Whole(name, defaultValue, minimum, maximum, description);

    public static Option<double> Positive(string name, double defaultValue, double maximum, string description) =>
        OptionRules.Real(name, defaultValue, 0, aboveMin: true, maximum, description);

    public static Option<double?> OptionalPositive(string name, double maximum, string description) =>
        OptionRules.OptionalReal(name, 0, aboveMin: true, maximum, description);

    public static Option<string> Choice(string name, string defaultValue, string description, params string[] values) =>
        OptionRules.Choice(name, defaultValue, description, values);

    public static Option<string?> Format() => new("--format")
    {
        Description = "Data file format: csv, tsv or jsonl. Default: from the file's extension.",
        HelpName = "csv|tsv|jsonl",
        Validators = { r => { if (r.GetValueOrDefault<string?>() is { } v && TextTableFormats.Parse(v) is null) r.AddError($"--format '{v}' is not one of csv, tsv, jsonl."); } },
    };

    public static TextTableFormat? ParseFormat(string? value) => value is null ? null : TextTableFormats.Parse(value);

    public static string Show(double v) => v.ToString("G", CultureInfo.InvariantCulture);
}
