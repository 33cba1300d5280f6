using System.Text.RegularExpressions;

namespace DoraSharp;

/// <summary>
/// Decides which module paths a <see cref="LoraConfig"/> targets, with PEFT's rules
/// (<c>check_target_module_exists</c> and <c>_check_exclude_modules</c>):
/// a regex must match the whole dotted path (<c>re.fullmatch</c>); a list entry matches a path that equals
/// it or ends with "." + entry. Exclusions are matched the same way and win over targets.
/// </summary>
public sealed class TargetMatcher
{
    private readonly IReadOnlyList<string>? _names;
    private readonly Regex? _regex;
    private readonly IReadOnlyList<string> _excluded;

    /// <summary>Creates the matcher for a validated config.</summary>
    public TargetMatcher(LoraConfig config)
    {
        _names = config.TargetModules;
        _regex = config.TargetModulesRegex is { } pattern
            ? new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))
            : null;
        _excluded = config.ExcludeModules ?? Array.Empty<string>();
    }

    /// <summary>True when <paramref name="path"/> is targeted and not excluded.</summary>
    public bool IsTarget(string path) => !IsExcluded(path) && MatchesTarget(path);

    /// <summary>True when <paramref name="path"/> is named by <see cref="LoraConfig.ExcludeModules"/>.</summary>
    public bool IsExcluded(string path) => _excluded.Any(e => NameMatches(path, e));

    /// <summary>True when <paramref name="path"/> matches the targets, ignoring exclusions.</summary>
    public bool MatchesTarget(string path)
        => _regex is not null ? _regex.IsMatch(path) : _names!.Any(n => NameMatches(path, n));

    /// <summary>The target list entries that match none of <paramref name="paths"/> (empty for a regex).</summary>
    public IReadOnlyList<string> UnmatchedEntries(IEnumerable<string> paths)
    {
        if (_names is null) return Array.Empty<string>();
        var all = paths.ToList();
        return _names.Where(n => !all.Any(p => NameMatches(p, n))).ToList();
    }

    /// <summary>PEFT's list rule: equal, or a suffix on a "." boundary.</summary>
    public static bool NameMatches(string path, string entry)
        => path == entry || path.EndsWith("." + entry, StringComparison.Ordinal);
}
