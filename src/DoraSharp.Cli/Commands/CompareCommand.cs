using System.CommandLine;
using System.Globalization;
using DoraSharp.Cli.Rendering;
using DoraSharp.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora compare`: LoRA against DoRA at several ranks on the same seeds (the DoRA paper's claim is that its
/// advantage is largest at low rank), with full fine-tuning and the frozen base for reference.
/// </summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var options = new ExperimentOptions(Path.Combine("runs", "compare"));
        var ranks = new Option<int[]>("--ranks")
        {
            Description = "Adapter ranks to compare, comma-separated. Default: 1,2,4,8,16.",
            HelpName = "R1,R2,…",
            CustomParser = ParseRanks,
        };
        var alpha = new Option<double?>("--alpha")
        {
            Description = "lora_alpha at every rank. Default: 2·r, so the scaling alpha / r stays 2 (the demo's r=4, alpha=8).",
            HelpName = "X",
            Validators = { r => { if (r.GetValueOrDefault<double?>() is { } v && !(v > 0 && double.IsFinite(v))) r.AddError($"--alpha must be a positive number (got {ExperimentOptions.Show(v)})."); } },
        };
        var resume = new ResumeOptions();
        var command = new Command("compare",
            "LoRA vs DoRA across ranks on the same seeds, with full fine-tuning and the frozen base for reference. " +
            "Prints a table; writes results.json, losses.csv and accuracy_vs_rank.png to --out.");
        options.AddTo(command);
        command.Options.Add(ranks);
        command.Options.Add(alpha);
        resume.AddTo(command);
        command.SetAction(p =>
        {
            var rankList = p.GetValue(ranks) is { Length: > 0 } given ? given : DefaultRanks;
            var fixedAlpha = p.GetValue(alpha);
            return ExperimentRun.Execute(p, options, "compare",
                FineTuneExperiment.RankSweepArms(rankList, r => fixedAlpha ?? 2.0 * r),
                null,
                (result, outDir) =>
                {
                    AnsiConsole.Write(ResultTables.Ranks(result, rankList));
                    foreach (var line in ResultTables.RankNotes(result)) AnsiConsole.WriteLine(line);
                    PlotFonts.Configure();
                    var plot = Path.Combine(outDir, "accuracy_vs_rank.png");
                    RankPlot.Save(plot, result, rankList);
                    return [plot];
                },
                resume.Choice(p));
        });
        return command;
    }

    private static readonly int[] DefaultRanks = [1, 2, 4, 8, 16];

    private static int[] ParseRanks(System.CommandLine.Parsing.ArgumentResult result)
    {
        var parts = result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)).ToList();
        var ranks = new List<int>();
        foreach (var part in parts)
        {
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var r) || r < 1)
            {
                result.AddError($"--ranks takes whole numbers >= 1 separated by commas, e.g. 1,2,4,8,16 (got '{part}').");
                return [];
            }
            if (ranks.Contains(r))
            {
                result.AddError($"--ranks lists rank {r} twice.");
                return [];
            }
            ranks.Add(r);
        }
        if (ranks.Count == 0) result.AddError("--ranks needs at least one rank, e.g. 1,2,4,8,16.");
        return ranks.ToArray();
    }
}
