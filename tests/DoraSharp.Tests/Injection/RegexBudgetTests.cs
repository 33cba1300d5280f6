using System.Text.RegularExpressions;
using DoraSharp.IO;
using DoraSharp.Tests.IO;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Injection;

/// <summary>
/// The <c>target_modules</c> regex is bounded by one time budget for all module paths of a Wrap or load, not by a
/// timeout per path (issue 13, defect 7: <c>(a+)+$</c> on 40 paths of 21 a's took 16.5 s with 1 s per path). The
/// sharing is tested with an injected clock, so no assertion depends on how fast this machine is.
/// </summary>
public sealed class RegexBudgetTests
{
    /// <summary>A clock that moves on by <paramref name="step"/> each time it is read.</summary>
    private static Func<TimeSpan> SteppingClock(TimeSpan step)
    {
        var now = TimeSpan.Zero;
        return () => { var t = now; now += step; return t; };
    }

    /// <summary>A model whose paths are "&lt;name&gt;", "&lt;name&gt;.0" … "&lt;name&gt;.&lt;n-1&gt;", each child a Linear.</summary>
    private sealed class Block : nn.Module<Tensor, Tensor>
    {
        public Block(string name, int n) : base("Block") =>
            register_module(name, nn.ModuleList(Enumerable.Range(0, n).Select(_ => (nn.Module<Tensor, Tensor>)nn.Linear(2, 2)).ToArray()));

        public override Tensor forward(Tensor x) => x;
    }

    [Fact]
    public void All_matches_of_one_matcher_draw_on_one_budget()
    {
        // 10 s in all; the clock says 4 s pass per match: matches start at 0, 4 and 8 s, the fourth finds nothing left.
        var budget = new RegexBudget(TimeSpan.FromSeconds(10), SteppingClock(TimeSpan.FromSeconds(4)));
        var matcher = new TargetMatcher(new LoraConfig { TargetModulesRegex = @"layers\.\d" }, budget);
        Assert.True(matcher.MatchesTarget("layers.0"));
        Assert.True(matcher.MatchesTarget("layers.1"));
        Assert.True(matcher.MatchesTarget("layers.2"));
        var e = Assert.Throws<RegexMatchTimeoutException>(() => matcher.MatchesTarget("layers.3"));
        Assert.Equal("layers.3", e.Input);
        Assert.Equal(TimeSpan.FromSeconds(10), e.MatchTimeout);
        Assert.Equal(3, budget.Matches);
    }

    [Fact]
    public void Wrap_stops_when_the_budget_for_all_paths_is_spent_naming_the_pattern_and_the_limit()
    {
        // Short names, so every real match is instant and only the injected clock decides.
        var model = new Block("aaa", 40);
        // Time runs out after 5 of the 41 paths: Wrap stops there instead of trying the remaining 36.
        var budget = new RegexBudget(TimeSpan.FromSeconds(1), SteppingClock(TimeSpan.FromSeconds(0.2)));
        var e = Assert.Throws<LoraConfigException>(() => LoraModel.WrapWithBudget(model, new LoraConfig { TargetModulesRegex = "(a+)+$" }, LoraModel.DefaultAdapterName, budget));
        Assert.Equal("TargetModulesRegex", e.Option);
        Assert.IsType<RegexMatchTimeoutException>(e.InnerException);
        Assert.Contains("(a+)+$", e.Message);
        Assert.Contains("took longer than the 1 s allowed for all of them together", e.Message);
        Assert.Contains("after 5 matches", e.Message);
        Assert.Equal(5, budget.Matches);
        Assert.DoesNotContain(model.modules(), m => m is LoraLayer);
    }

    [Fact]
    public void A_catastrophic_pattern_is_stopped_by_the_real_clock_with_the_documented_exception()
    {
        // (a+)+$ against 25 a's and a dot backtracks 2^25 ways on every path; with the default 1 s for the whole Wrap
        // the first path already uses it up (no duration is asserted: only that the one budget, not 40 timeouts, ends it).
        var model = new Block(new string('a', 25), 40);
        var budget = new RegexBudget();
        var e = Assert.Throws<LoraConfigException>(() => LoraModel.WrapWithBudget(model, new LoraConfig { TargetModulesRegex = "(a+)+$" }, LoraModel.DefaultAdapterName, budget));
        Assert.IsType<RegexMatchTimeoutException>(e.InnerException);
        Assert.Contains("(a+)+$", e.Message);
        Assert.True(budget.Matches < 41, $"all {budget.Matches} paths were tried");
    }

    [Fact]
    public void A_load_matches_every_path_once_within_one_budget()
    {
        using var temp = new TempDirectory();
        string dir = AdapterFixture.CopyAdapter(temp.File("adapter"));
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = @"layers\.[024]");
        var model = new Mlp();
        int paths = ModuleSurgery.Descendants(model).Count;
        var budget = new RegexBudget(TimeSpan.FromSeconds(1000), SteppingClock(TimeSpan.FromSeconds(1)));
        var lora = LoraModelFiles.Load(model, dir, isTrainable: false, LoraModel.DefaultAdapterName, budget);
        Assert.Equal(3, lora.Layers.Count);
        // One injection plan serves the file check and the injection: every path is matched once.
        Assert.Equal(paths, budget.Matches);
    }

    [Fact]
    public void A_load_whose_regex_runs_out_of_time_is_refused_as_a_format_error_naming_pattern_and_limit()
    {
        using var temp = new TempDirectory();
        string dir = AdapterFixture.CopyAdapter(temp.File("adapter"));
        AdapterFixture.EditConfig(dir, c => c["target_modules"] = "(a+)+$");
        var model = new Mlp();
        using var snapshot = ModelSnapshot.Take(model);
        var budget = new RegexBudget(TimeSpan.FromSeconds(2), SteppingClock(TimeSpan.FromSeconds(1)));
        var e = Assert.Throws<AdapterFormatException>(() => LoraModelFiles.Load(model, dir, isTrainable: false, LoraModel.DefaultAdapterName, budget));
        Assert.Equal(Path.Combine(dir, AdapterFiles.ConfigFileName), e.FilePath);
        Assert.Contains("field \"target_modules\" ('(a+)+$')", e.Message);
        Assert.Contains("2 s allowed for all of them together", e.Message);
        Assert.Equal(2, budget.Matches);
        snapshot.AssertUnchanged(model);
    }
}
