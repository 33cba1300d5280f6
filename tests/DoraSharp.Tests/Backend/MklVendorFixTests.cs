using Xunit;

namespace DoraSharp.Tests.Backend;

/// <summary>The re-execution decision of the MKL vendor fix (issue 15), as a table, and the switch's spellings.</summary>
public sealed class MklVendorFixTests
{
    private const string Intel = "GenuineIntel", Amd = "AuthenticAMD", Hygon = "HygonGenuine";
    private const string Lib = "/x/libdorasharp_mkl_vendor_fix.so";

    // vendor, mode, override already active, re-executed (guard set), MKL present, library found → re-execute?
    public static TheoryData<string?, MklVendorFixMode, bool, bool, bool, string?, bool> Table() => new()
    {
        { Amd, MklVendorFixMode.Auto, false, false, true, Lib, true },       // the case the fix exists for
        { Hygon, MklVendorFixMode.Auto, false, false, true, Lib, true },     // any non-Intel x86 vendor
        { Intel, MklVendorFixMode.Auto, false, false, true, Lib, false },    // Intel: not needed
        { null, MklVendorFixMode.Auto, false, false, true, Lib, false },     // not x86
        { Amd, MklVendorFixMode.Off, false, false, true, Lib, false },       // DORASHARP_MKL_VENDOR_FIX=0
        { Amd, MklVendorFixMode.Auto, true, false, true, Lib, false },       // already preloaded
        { Amd, MklVendorFixMode.Auto, false, true, true, Lib, false },       // loop guard: re-executed once already
        { Amd, MklVendorFixMode.Auto, false, false, false, Lib, false },     // libtorch without MKL
        { Amd, MklVendorFixMode.Auto, false, false, true, null, false },     // fix not built
        { Intel, MklVendorFixMode.Force, false, false, true, Lib, true },    // forced, to test the mechanism on Intel
        { Intel, MklVendorFixMode.Force, false, false, false, Lib, true },   // forced ignores the MKL probe
        { Intel, MklVendorFixMode.Force, true, false, true, Lib, false },    // forced but already active
        { Intel, MklVendorFixMode.Force, false, true, true, Lib, false },    // forced, still guarded against loops
        { Intel, MklVendorFixMode.Force, false, false, true, null, false },  // forced but nothing to preload
        { Amd, MklVendorFixMode.Off, true, true, true, Lib, false },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Decide_reexecutes_exactly_when_a_non_Intel_CPU_with_MKL_lacks_the_fix(
        string? vendor, MklVendorFixMode mode, bool active, bool reexecuted, bool mkl, string? library, bool expected)
    {
        var decision = MklVendorFix.Decide(vendor, mode, active, reexecuted, () => mkl, library);
        Assert.Equal(expected, decision.Reexecute);
        Assert.False(string.IsNullOrWhiteSpace(decision.Reason));
    }

    [Fact]
    public void On_Intel_the_decision_says_not_needed_and_does_not_load_libtorch_to_probe_MKL()
    {
        var asked = false;
        var decision = MklVendorFix.Decide(Intel, MklVendorFixMode.Auto, false, false, () => asked = true, Lib);
        Assert.False(decision.Reexecute);
        Assert.Contains("Intel CPU: the vendor fix is not needed", decision.Reason);
        Assert.False(asked);
    }

    [Theory]
    [InlineData(null, MklVendorFixMode.Auto)]
    [InlineData("", MklVendorFixMode.Auto)]
    [InlineData("1", MklVendorFixMode.Auto)]
    [InlineData(" auto ", MklVendorFixMode.Auto)]
    [InlineData("0", MklVendorFixMode.Off)]
    [InlineData("OFF", MklVendorFixMode.Off)]
    [InlineData("force", MklVendorFixMode.Force)]
    public void The_switch_accepts_its_spellings(string? value, MklVendorFixMode expected)
        => Assert.Equal(expected, MklVendorFix.ParseMode(value));

    [Fact]
    public void A_misspelt_switch_is_refused_with_the_variable_and_the_value()
    {
        var e = Assert.Throws<ArgumentException>(() => MklVendorFix.ParseMode("disable"));
        Assert.Contains(MklVendorFix.SwitchVariable, e.Message);
        Assert.Contains("'disable'", e.Message);
    }

    [Fact]
    public void The_cache_path_follows_XDG_CACHE_HOME_and_is_searched_last()
    {
        var paths = MklVendorFix.SearchPaths();
        Assert.Equal(MklVendorFix.CachePath, paths[^1]);
        Assert.All(paths, p => Assert.EndsWith(MklVendorFix.LibraryFileName, p));
    }

    /// <summary>
    /// Run by scripts/test.sh a second time with the fix in LD_PRELOAD and DORASHARP_EXPECT_MKL_OVERRIDE=1 (with the
    /// golden tests): says that the preload took effect there, and that nothing overrides MKL in the plain run.
    /// </summary>
    [Fact]
    public void The_override_is_active_exactly_when_the_test_run_preloads_it()
    {
        var expected = Environment.GetEnvironmentVariable("DORASHARP_EXPECT_MKL_OVERRIDE") == "1";
        var report = BlasCheck.Run(measureSgemm: false);
        Assert.Equal(expected, report.OverrideActive);
        if (expected && report.MklVersion is not null) Assert.Equal(BlasPath.MklOptimized, report.Path);
    }
}
