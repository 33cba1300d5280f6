using System.Diagnostics;
using System.Text.Json.Nodes;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora doctor` and the CLI's start-up re-execution with the MKL vendor fix (issue 15), in real child processes
/// (a preload only exists from a process's start). On this project's Intel machines the fix is not needed, so the
/// mechanism is forced (DORASHARP_MKL_VENDOR_FIX=force), and a non-Intel CPU is imitated by preloading a vendor
/// check that answers 0, which sends MKL to its generic path as on AMD.
/// </summary>
public sealed class DoctorCommandTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);

    private static async Task<JsonNode> Doctor(Dictionary<string, string> environment)
    {
        // The test process itself may run under a preload (scripts/test.sh's second pass): start clean unless asked.
        environment.TryAdd("LD_PRELOAD", "");
        environment.TryAdd(MklVendorFix.SwitchVariable, "1");
        var (code, output, error) = await CliProcess.RunAsync(environment, Timeout, "doctor", "--json", "--no-sgemm");
        Assert.True(code == 0, error);
        return JsonNode.Parse(output)!;
    }

    [Fact]
    public async Task Forced_the_CLI_reexecutes_itself_with_the_fix_preloaded_and_doctor_says_so()
    {
        var json = await Doctor(new() { [MklVendorFix.SwitchVariable] = "force" });
        var report = json["report"]!;
        Assert.True((bool)report["OverrideActive"]!);
        Assert.True((bool)report["Reexecuted"]!);
        Assert.EndsWith(MklVendorFix.LibraryFileName, (string)report["OverrideLibrary"]!);
        Assert.False((bool)json["vendor_fix_decision"]!["Reexecute"]!);
    }

    [Fact]
    public async Task Turned_off_the_CLI_does_not_reexecute()
    {
        var json = await Doctor(new() { [MklVendorFix.SwitchVariable] = "0" });
        Assert.False((bool)json["report"]!["OverrideActive"]!);
        Assert.False((bool)json["report"]!["Reexecuted"]!);
        Assert.Contains("turned off", (string)json["vendor_fix_decision"]!["Reason"]!);
    }

    [Fact]
    public async Task By_default_the_fix_is_applied_exactly_on_non_Intel_CPUs_and_MKL_takes_its_optimised_path()
    {
        var json = await Doctor(new());
        var intel = CpuIdentity.Vendor == MklVendorFix.IntelVendor;
        Assert.Equal(!intel, (bool)json["report"]!["OverrideActive"]!);
        Assert.Equal(!intel, (bool)json["report"]!["Reexecuted"]!);
        if (intel) Assert.Contains("Intel CPU: the vendor fix is not needed", (string)json["vendor_fix_decision"]!["Reason"]!);
        Assert.Equal("MklOptimized", (string)json["report"]!["Path"]!);
    }

    [CCompilerFact]
    public async Task A_vendor_check_answering_no_sends_MKL_to_its_generic_path_and_the_fix_brings_it_back()
    {
        using var dir = new DoraSharp.Tests.IO.TempDirectory();
        var notIntel = Path.Combine(dir.Path, "libnot_intel.so");
        var source = Path.Combine(dir.Path, "not_intel.c");
        File.WriteAllText(source, "int mkl_serv_intel_cpu_true(void) { return 0; }\n");
        using (var cc = Process.Start("cc", ["-shared", "-fPIC", "-o", notIntel, source])!) cc.WaitForExit();
        Assert.True(File.Exists(notIntel));

        // What an AMD CPU gets without the fix: MKL's generic code path (0), said as such.
        var without = await Doctor(new() { ["LD_PRELOAD"] = notIntel, [MklVendorFix.SwitchVariable] = "0" });
        Assert.Equal("MklGeneric", (string)without["report"]!["Path"]!);
        Assert.Equal(0, (int)without["report"]!["MklCodePath"]!);
        Assert.Contains("GENERIC", (string)without["report"]!["Explanation"]!);

        // The CLI's re-execution puts the fix before it in LD_PRELOAD: the optimised path is back.
        var with = await Doctor(new() { ["LD_PRELOAD"] = notIntel, [MklVendorFix.SwitchVariable] = "force" });
        Assert.Equal("MklOptimized", (string)with["report"]!["Path"]!);
        Assert.NotEqual(0, (int)with["report"]!["MklCodePath"]!);
        Assert.True((bool)with["report"]!["OverrideActive"]!);
    }

    [Fact]
    public async Task A_misspelt_switch_stops_the_CLI_with_exit_2_and_names_the_value()
    {
        var (code, _, error) = await CliProcess.RunAsync(new Dictionary<string, string> { [MklVendorFix.SwitchVariable] = "maybe" }, Timeout, "doctor");
        Assert.Equal(2, code);
        Assert.Contains("DORASHARP_MKL_VENDOR_FIX='maybe'", error);
    }
}

/// <summary>A fact that needs a C compiler (`cc`, which scripts/setup-native.sh installs); skipped with the reason elsewhere.</summary>
public sealed class CCompilerFactAttribute : FactAttribute
{
    public CCompilerFactAttribute()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        if (!OperatingSystem.IsLinux() || !path.Split(':').Any(d => File.Exists(Path.Combine(d, "cc"))))
            Skip = "no C compiler (cc) on PATH: run scripts/setup-native.sh.";
    }
}
