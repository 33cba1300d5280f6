using System.CommandLine;
using System.Globalization;
using DoraSharp.MiniLM.OwnData;

namespace DoraSharp.Cli.OwnData;

/// <summary>
/// Option builders for `dora train` and `dora predict`, each validating its own value so that a bad option is one
/// line on stderr and exit code 2 (System.CommandLine reports validator errors before the command runs).
/// </summary>
internal static class OwnDataOptions
{
    public static Option<int> Int(string name, int defaultValue, int minimum, string description) => new(name)
    {
        Description = description,
        HelpName = "N",
        DefaultValueFactory = _ => defaultValue,
        Validators = { r => { var v = r.GetValueOrDefault<int>(); if (v < minimum) r.AddError($"{name} must be at least {minimum} (got {v})."); } },
    };

    public static Option<double> Positive(string name, double defaultValue, string description) => new(name)
    {
        Description = description,
        HelpName = "X",
        DefaultValueFactory = _ => defaultValue,
        Validators = { r => { var v = r.GetValueOrDefault<double>(); if (!(v > 0 && double.IsFinite(v))) r.AddError($"{name} must be a positive number (got {Show(v)})."); } },
    };

    public static Option<double?> OptionalPositive(string name, string description) => new(name)
    {
        Description = description,
        HelpName = "X",
        Validators = { r => { if (r.GetValueOrDefault<double?>() is { } v && !(v > 0 && double.IsFinite(v))) r.AddError($"{name} must be a positive number (got {Show(v)})."); } },
    };

    public static Option<string> Choice(string name, string defaultValue, string description, params string[] values)
    {
        var option = new Option<string>(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.AcceptOnlyFromAmong(values);
        return option;
    }

    public static Option<string?> Format() => new("--format")
    {
        Description = "Data file format: csv, tsv or jsonl. Default: from the file's extension.",
        HelpName = "csv|tsv|jsonl",
        Validators = { r => { if (r.GetValueOrDefault<string?>() is { } v && TextTableFormats.Parse(v) is null) r.AddError($"--format '{v}' is not one of csv, tsv, jsonl."); } },
    };

    public static TextTableFormat? ParseFormat(string? value) => value is null ? null : TextTableFormats.Parse(value);

    public static string Show(double v) => v.ToString("G", CultureInfo.InvariantCulture);
}
