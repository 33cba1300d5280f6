using System.CommandLine;
using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Reference;
using Spectre.Console;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora minilm-check`: runs the fixed check sentences through the TorchSharp all-MiniLM-L6-v2 and through
/// ONNX Runtime on the same ONNX file, and prints the largest differences and the timings. Exit 1 when a
/// difference exceeds the tolerance, so scripts can rely on it.
/// </summary>
internal static class MiniLmCheckCommand
{
    public static Command Create()
    {
        var tolerance = OptionRules.Real("--tolerance", 1e-4, 0, aboveMin: true, 1, "Largest allowed |TorchSharp − ONNX Runtime| over every compared value.");
        var threads = OptionRules.Whole("--threads", 2, 1, 256, "Threads for libtorch and ONNX Runtime.");
        var batch = OptionRules.Whole("--batch", 16, 1, 1024, "Sentences per padded batch.");
        var maxLength = OptionRules.Whole("--max-length", MiniLmTokenizer.DefaultMaxLength, 2, MiniLmDemoCommand.MaxSequence, "Truncation length in word pieces, [CLS] and [SEP] included.");
        var showSentences = new Option<bool>("--sentences") { Description = "Also list the sentences compared." };
        var command = new Command("minilm-check", "Compare the TorchSharp all-MiniLM-L6-v2 with ONNX Runtime on a fixed set of sentences.")
            { tolerance, threads, batch, maxLength, showSentences };
        command.SetAction(p => Run(p.GetValue(tolerance), p.GetValue(threads), p.GetValue(batch), p.GetValue(maxLength), p.GetValue(showSentences)));
        return command;
    }

    private static int Run(double tolerance, int threads, int batch, int maxLength, bool showSentences)
    {
        var sentences = MiniLmCheckSentences.All;
        if (showSentences)
        {
            var list = new Table().Title("[bold]Sentences[/]").AddColumns("#", "text");
            for (int i = 0; i < sentences.Count; i++)
                list.AddRow($"{i}", Markup.Escape(Shorten(sentences[i])));
            AnsiConsole.Write(list);
        }

        OnnxReferenceCheckResult result = null!;
        AnsiConsole.Status().Start("loading both models and running the sentences",
            _ => result = OnnxReferenceCheck.Run(sentences, threads, batch, maxLength));

        bool Pass(double d) => d <= tolerance;
        string Diff(double d) => Pass(d) ? $"[green]{d:0.00E+0}[/]" : $"[red]{d:0.00E+0}[/]";
        var table = new Table().Title("[bold]all-MiniLM-L6-v2: TorchSharp vs ONNX Runtime[/] (same ONNX weights, float32)")
            .AddColumns("compared", "max |TorchSharp − ORT|");
        table.AddRow("last_hidden_state (real tokens)", Diff(result.MaxAbsDiffHidden));
        table.AddRow("mean-pooled embedding", Diff(result.MaxAbsDiffPooled));
        table.AddRow("normalised embedding", Diff(result.MaxAbsDiffNormalized));
        table.AddRow("pooler_output", Diff(result.MaxAbsDiffPoolerOutput));
        table.AddRow("min cosine (normalised)", $"{result.MinCosine:F9}");
        AnsiConsole.Write(table);

        var input = new Table().HideHeaders().AddColumns("input", "value");
        input.AddRow("sentences", $"{result.Sentences} in {result.Batches} padded batches of ≤ {batch}");
        input.AddRow("tokens", $"{result.RealTokens:N0} real, {result.PaddedPositions:N0} padding; longest {result.LongestSequence} (max length {maxLength})");
        input.AddRow("threads", $"{threads}");
        AnsiConsole.Write(input);

        var timing = new Table().Title("[bold]Timings[/]").AddColumns("step", "TorchSharp", "ONNX Runtime");
        timing.AddRow("load", Ms(result.TorchLoadTime), Ms(result.OrtLoadTime));
        timing.AddRow("run (all batches)", Ms(result.TorchRunTime), Ms(result.OrtRunTime));
        timing.AddRow("per sentence", Ms(result.TorchRunTime / result.Sentences), Ms(result.OrtRunTime / result.Sentences));
        timing.AddRow("tokenize (C#, shared)", Ms(result.TokenizeTime), "");
        AnsiConsole.Write(timing);

        if (Pass(result.MaxAbsDiff))
        {
            AnsiConsole.MarkupLine($"[green]OK[/]: every difference ≤ {tolerance:0.0E+0}.");
            return 0;
        }
        AnsiConsole.MarkupLine($"[red]FAIL[/]: largest difference {result.MaxAbsDiff:0.00E+0} > {tolerance:0.0E+0}.");
        return 1;
    }

    private static string Ms(TimeSpan t) => $"{t.TotalMilliseconds:N0} ms";

    private static string Shorten(string s)
    {
        var flat = s.Replace("\t", "\\t").Replace("\r", "\\r").Replace("\n", "\\n");
        return flat.Length <= 90 ? flat : flat[..87] + "...";
    }
}
