using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora doctor`: which BLAS path libtorch takes on this machine and why (issue 15) — the CPU, oneMKL's version and
/// code path, whether the MKL vendor fix is active, the start-up decision, and a measured single-thread sgemm rate.
/// </summary>
internal static class DoctorCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print the report as one JSON object." };
        var noSgemm = new Option<bool>("--no-sgemm") { Description = "Skip the sgemm timing (about 0.2 s)." };
        var command = new Command("doctor", "Say which BLAS code path libtorch takes here (MKL optimised or generic) and why.") { json, noSgemm };
        command.SetAction(p =>
        {
            var report = BlasCheck.Run(measureSgemm: !p.GetValue(noSgemm));
            var decision = BlasStartup.Current();
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(new DoctorJson(report, decision),
                    new JsonSerializerOptions { WriteIndented = true, Converters = { new JsonStringEnumConverter() } }));
            else
                foreach (var line in Lines(report, decision)) Console.WriteLine(line);
            return 0;
        });
        return command;
    }

    /// <summary>The JSON shape of `dora doctor --json`: the library's report and the CLI's start-up decision.</summary>
    internal sealed record DoctorJson(
        [property: JsonPropertyName("report")] BlasReport Report,
        [property: JsonPropertyName("vendor_fix_decision")] MklVendorFixDecision Decision);

    /// <summary>The text report, one fact a line.</summary>
    internal static IEnumerable<string> Lines(BlasReport r, MklVendorFixDecision decision)
    {
        string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);
        yield return $"CPU          {r.CpuModel ?? "unknown"} ({r.CpuVendor ?? "not x86"}, {r.VectorIsa ?? "no x86 vector ISA"})";
        yield return r.MklVersion is null ? "BLAS         no oneMKL in libtorch" : $"BLAS         {r.MklVersion}";
        yield return $"MKL path     {r.Path}{(r.MklCodePath is { } c ? $" (mkl_serv_cpu_detect = {c}; 0 is the generic path)" : "")}";
        yield return $"vendor fix   {(r.OverrideActive ? $"active, from {r.OverrideLibrary ?? "a preloaded library"}" : "not active")}" +
                     $"{(r.Reexecuted ? "; this process was re-executed to apply it" : "")}";
        yield return $"start-up     {decision.Reason}";
        yield return $"fix library  {r.FixLibrary ?? $"not found (searched {string.Join(", ", MklVendorFix.SearchPaths())})"}";
        if (r.SgemmGflops is { } g)
        {
            var perCycle = r.SgemmFlopsPerCycle is { } pc ? $", {F(pc, "F1")} flop/cycle at the reported {F(r.ReportedClockGhz!.Value, "F2")} GHz" +
                (CpuIdentity.FlopsPerCycleOneUnit is { } one ? $" (one {r.VectorIsa} FMA unit: {one}; indicative, turbo clocks are higher)" : "") : "";
            yield return $"sgemm        {F(g, "F1")} GFLOP/s on 1 thread (512³){perCycle}";
        }
        yield return $"threads      libtorch uses {r.Threads}";
        yield return $"verdict      {r.Explanation}";
    }
}
