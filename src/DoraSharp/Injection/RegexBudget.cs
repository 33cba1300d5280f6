using System.Diagnostics;

namespace DoraSharp;

/// <summary>
/// One time budget for matching a <c>target_modules</c> regular expression against every module path of one
/// <see cref="LoraModel.Wrap"/>, <see cref="LoraModel.AddAdapter"/> or adapter load — not per path. A pattern that
/// backtracks exponentially, such as <c>(a+)+$</c>, takes about 0.4 s on each of 40 paths of 21 a's; with a timeout
/// per path that adds up to 16 s, with one budget the load stops after <see cref="Limit"/>. Each match is given
/// about what is left of the budget as its .NET match timeout (<see cref="TargetMatcher"/>), so the total stays
/// within 5 % of the limit (plus .NET's timeout granularity).
/// </summary>
internal sealed class RegexBudget
{
    /// <summary>
    /// The default limit for all the matches of one load: PEFT patterns are a few alternatives of module names and
    /// match a thousand paths in milliseconds, so a second is generous and still bounds a hostile pattern.
    /// </summary>
    public static readonly TimeSpan DefaultLimit = TimeSpan.FromSeconds(1);

    private readonly Func<TimeSpan> _elapsed;

    /// <summary>Starts a budget of <paramref name="limit"/>; <paramref name="elapsed"/> replaces the clock (tests).</summary>
    public RegexBudget(TimeSpan? limit = null, Func<TimeSpan>? elapsed = null)
    {
        Limit = limit ?? DefaultLimit;
        if (elapsed is null)
        {
            var clock = Stopwatch.StartNew();
            elapsed = () => clock.Elapsed;
        }
        _elapsed = elapsed;
    }

    /// <summary>The time all matches together may take.</summary>
    public TimeSpan Limit { get; }

    /// <summary>How many matches were started against this budget.</summary>
    public int Matches { get; private set; }

    /// <summary>
    /// What is left for the next match, which is counted; throws <see cref="System.Text.RegularExpressions.RegexMatchTimeoutException"/>
    /// (naming <paramref name="pattern"/>, <paramref name="path"/> and the limit) when nothing is left.
    /// </summary>
    public TimeSpan Next(string pattern, string path)
    {
        TimeSpan left = Limit - _elapsed();
        if (left <= TimeSpan.Zero) throw new System.Text.RegularExpressions.RegexMatchTimeoutException(path, pattern, Limit);
        Matches++;
        return left;
    }
}
