using System.CommandLine;
using DoraSharp.Cli.Rendering;
using DoraSharp.Examples.Experiments;
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
            Description = $"Adapter ranks to compare, comma-separated. Default: 1,2,4,8,16. Allowed: up to {MaxRanks} distinct ranks, each 1 to {DemoCommand.MaxRank}.",
            HelpName = "R1,R2,…",
            CustomParser = r => r.Tokens.Count == 0 ? [] : OptionRules.ParseWholeList(r, "--ranks", string.Join(',', r.Tokens.Select(t => t.Value)), 1, DemoCommand.MaxRank, MaxRanks, "1,2,4,8,16") ?? [],
        };
        var alpha = OptionRules.OptionalReal("--alpha", 0, aboveMin: true, DemoCommand.MaxAlpha,
            "lora_alpha at every rank. Default: 2·r, so the scaling alpha / r stays 2 (the demo's r=4, alpha=8).");
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

    /// <summary>Every rank is two runs per seed: more than this is a mistake, not an experiment.</summary>
    private const int MaxRanks = 16;
}
