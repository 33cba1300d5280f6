using System.Globalization;
using DoraSharp.Examples.Experiments;
using Spectre.Console;

namespace DoraSharp.Cli.Rendering;

/// <summary>The tables `dora demo` and `dora compare` print; every number in them is also in results.json.</summary>
internal static class ResultTables
{
    /// <summary>method | trainable params | % of model | train time | test accuracy (± std over seeds).</summary>
    public static Table Methods(ExperimentResult result)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("Method")
            .AddColumn(new TableColumn("Trainable params").RightAligned())
            .AddColumn(new TableColumn("% of model").RightAligned())
            .AddColumn(new TableColumn("Train time").RightAligned())
            .AddColumn(new TableColumn(AccuracyHeader(result)).RightAligned());
        foreach (var arm in result.Arms)
        {
            table.AddRow(
                Markup.Escape(arm.Arm.Label),
                arm.TrainableParameters.ToString("N0", CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{arm.TrainablePercent:F2} %"),
                arm.TrainableParameters == 0 ? "—" : Seconds(arm.TrainSeconds),
                Accuracy(arm.Accuracy));
        }
        return table;
    }

    /// <summary>rank | params LoRA / DoRA | LoRA accuracy | DoRA accuracy | DoRA − LoRA (paired by seed, in points).</summary>
    public static Table Ranks(ExperimentResult result, IReadOnlyList<int> ranks)
    {
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn(new TableColumn("Rank").RightAligned())
            .AddColumn(new TableColumn("Params LoRA / DoRA").RightAligned())
            .AddColumn(new TableColumn("LoRA accuracy").RightAligned())
            .AddColumn(new TableColumn("DoRA accuracy").RightAligned())
            .AddColumn(new TableColumn("DoRA − LoRA").RightAligned());
        foreach (var (r, lora, dora) in RankPairs(result, ranks))
        {
            var gap = PairedGap(lora, dora);
            table.AddRow(
                r.ToString(CultureInfo.InvariantCulture),
                string.Create(CultureInfo.InvariantCulture, $"{lora.TrainableParameters:N0} / {dora.TrainableParameters:N0}"),
                Accuracy(lora.Accuracy),
                Accuracy(dora.Accuracy),
                (gap.Mean >= 0 ? "+" : "") + Points(gap));
        }
        return table;
    }

    /// <summary>The LoRA and DoRA results of each rank, in the order given.</summary>
    public static IEnumerable<(int Rank, ArmResult Lora, ArmResult Dora)> RankPairs(ExperimentResult result, IReadOnlyList<int> ranks) =>
        ranks.Select(r => (r,
            result.Arms.Single(a => a.Arm.Method == FineTuneMethod.Lora && a.Arm.Rank == r),
            result.Arms.Single(a => a.Arm.Method == FineTuneMethod.Dora && a.Arm.Rank == r)));

    /// <summary>DoRA minus LoRA accuracy on each seed (both ran on the same seeds, in the same order).</summary>
    public static Summary PairedGap(ArmResult lora, ArmResult dora) =>
        new(lora.Runs.Zip(dora.Runs, (l, d) => d.Test.Accuracy - l.Test.Accuracy));

    /// <summary>"91.35 %" or "91.35 ± 0.42 %".</summary>
    public static string Accuracy(Summary s) => s.Std is { } sd
        ? string.Create(CultureInfo.InvariantCulture, $"{100 * s.Mean:F2} ± {100 * sd:F2} %")
        : string.Create(CultureInfo.InvariantCulture, $"{100 * s.Mean:F2} %");

    private static string Points(Summary s) => s.Std is { } sd
        ? string.Create(CultureInfo.InvariantCulture, $"{100 * s.Mean:F2} ± {100 * sd:F2}")
        : string.Create(CultureInfo.InvariantCulture, $"{100 * s.Mean:F2}");

    private static string Seconds(Summary s) => string.Create(CultureInfo.InvariantCulture, $"{s.Mean:F1} s");

    private static string AccuracyHeader(ExperimentResult result) =>
        result.Settings.Seeds > 1 ? "Test accuracy (mean ± std)" : "Test accuracy";

    /// <summary>The lines printed under the demo's table: what was evaluated on what.</summary>
    public static IEnumerable<string> MethodNotes(ExperimentResult result) => Notes(result);

    /// <summary>The lines printed under the compare table: the references and what the last column means.</summary>
    public static IEnumerable<string> RankNotes(ExperimentResult result) =>
        Notes(result).Append("References: " + string.Join("; ", result.Arms.Where(a => !a.Arm.IsAdapter)
            .Select(a => $"{a.Arm.Label} {Accuracy(a.Accuracy)}")) +
            ". DoRA − LoRA: percentage points, difference per seed, then mean ± std.");

    private static IEnumerable<string> Notes(ExperimentResult result)
    {
        var d = result.Data;
        var s = result.Settings;
        var seeds = s.Seeds == 1
            ? $"seed {s.Seed}"
            : $"{s.Seeds} seeds ({string.Join(", ", s.SeedValues)}), sample std";
        var test = d.Task == ExperimentTask.Shift ? $"all {d.TestImages:N0} test images, turned 90°" : $"all {d.TestImages:N0} test images";
        yield return string.Create(CultureInfo.InvariantCulture, $"Accuracy on {test}; {seeds}. Train time: wall time of fine-tuning (mean over seeds).");
        yield return string.Create(CultureInfo.InvariantCulture,
            $"The pretrained model ({Commands.ExperimentRun.Epochs(s.PretrainEpochs)} on {d.TrainImages:N0} {d.Dataset} images) scores {Accuracy(result.Pretraining.Accuracy)} on the test images as they are.");
    }
}
