using System.Text.RegularExpressions;

namespace DoraSharp;

/// <summary>
/// Decides which module paths a <see cref="LoraConfig"/> targets, with PEFT's rules
/// (<c>check_target_module_exists</c> and <c>_check_exclude_modules</c>):
/// a regex must match the whole dotted path (<c>re.fullmatch</c>); a list entry matches a path that equals
/// it or ends with "." + entry. Exclusions are matched the same way and win over targets, and so do the
/// modules of <see cref="LoraConfig.ModulesToSave"/> and everything inside them (PEFT excludes any path matching
/// <c>(^|.*\.)m($|\..*)</c>: an adapter inside a module trained in full would conflict with it).
/// </summary>
public sealed class TargetMatcher
{
    private readonly IReadOnlyList<string>? _names;
    private readonly Regex? _regex;
    private readonly IReadOnlyList<string> _excluded;
    private readonly IReadOnlyList<string> _modulesToSave;

    /// <summary>Creates the matcher for a validated config.</summary>
    public TargetMatcher(LoraConfig config)
    {
        _names = config.TargetModules;
        _regex = config.TargetModulesRegex is { } pattern
            ? new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1))
            : null;
        _excluded = config.ExcludeModules ?? Array.Empty<string>();
        _modulesToSave = config.ModulesToSave ?? Array.Empty<string>();
    }

    /// <summary>True when <paramref name="path"/> is targeted and not excluded.</summary>
    public bool IsTarget(string path) => !IsExcluded(path) && MatchesTarget(path);

    /// <summary>
    /// True when <paramref name="path"/> is named by <see cref="LoraConfig.ExcludeModules"/>, or is or lies inside a
    /// module of <see cref="LoraConfig.ModulesToSave"/>.
    /// </summary>
    public bool IsExcluded(string path) => _excluded.Any(e => NameMatches(path, e)) || _modulesToSave.Any(m => IsWithin(path, m)) || IsModuleToSave(path);

    /// <summary>
    /// True when <paramref name="path"/> is one of <see cref="LoraConfig.ModulesToSave"/>. PEFT's <c>_set_trainable</c>
    /// tests <c>key.endswith(target_key)</c> as plain strings, so "classifier" also selects "pre_classifier"; kept for
    /// compatibility with PEFT's files.
    /// </summary>
    public bool IsModuleToSave(string path) => _modulesToSave.Any(m => path.EndsWith(m, StringComparison.Ordinal));

    // The path is the module named m or lies below it: PEFT's re.match(rf"(^|.*\.){m}($|\..*)", key).
    private static bool IsWithin(string path, string m)
        => NameMatches(path, m) || path.StartsWith(m + ".", StringComparison.Ordinal) || path.Contains("." + m + ".", StringComparison.Ordinal);

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
