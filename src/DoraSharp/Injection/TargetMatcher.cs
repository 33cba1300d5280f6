using System.Text.RegularExpressions;

namespace DoraSharp;

/// <summary>
/// Decides which module paths a <see cref="LoraConfig"/> targets, with PEFT's rules
/// (<c>check_target_module_exists</c> and <c>_check_exclude_modules</c>):
/// a regex must match the whole dotted path (<c>re.fullmatch</c>, with Python's regex syntax: <see cref="PythonRegex"/>); a list entry matches a path that equals
/// it or ends with "." + entry. Exclusions are matched the same way and win over targets, and so do the
/// modules of <see cref="LoraConfig.ModulesToSave"/> and everything inside them (PEFT excludes any path matching
/// <c>(^|.*\.)m($|\..*)</c>: an adapter inside a module trained in full would conflict with it).
/// </summary>
public sealed class TargetMatcher
{
    private readonly IReadOnlyList<string>? _names;
    private readonly string? _pattern;
    private readonly string? _translated;
    private readonly RegexOptions _options;
    private readonly RegexBudget _budget;
    private Regex? _regex;   // rebuilt as the budget runs down, see MatchesTarget
    private readonly IReadOnlyList<string> _excluded;
    private readonly IReadOnlyList<string> _modulesToSave;

    /// <summary>Creates the matcher for a validated config, with a regex time budget of its own (<see cref="RegexBudget.DefaultLimit"/>).</summary>
    public TargetMatcher(LoraConfig config) : this(config, null) { }

    /// <summary>Creates the matcher for a validated config.</summary>
    /// <param name="config">The config.</param>
    /// <param name="budget">
    /// The time all regex matches of this matcher (and any other sharing the budget: a load matches twice) may take
    /// together; null for a new <see cref="RegexBudget"/> of the default limit.
    /// </param>
    /// <exception cref="PythonRegexException">The regex cannot be translated (a validated config never fails here).</exception>
    internal TargetMatcher(LoraConfig config, RegexBudget? budget)
    {
        _names = config.TargetModules;
        _pattern = config.TargetModulesRegex;
        if (_pattern is not null)
        {
            // PEFT: re.fullmatch(target_modules, key), with Python's syntax and semantics (PythonRegex).
            var (translated, options) = PythonRegex.Translate(_pattern);
            _translated = $@"\A(?:{translated})\z";
            _options = options | RegexOptions.CultureInvariant;
        }
        _budget = budget ?? new RegexBudget();
        _excluded = config.ExcludeModules ?? Array.Empty<string>();
        _modulesToSave = config.ModulesToSave ?? Array.Empty<string>();
    }

    /// <summary>The budget the regex matches draw on.</summary>
    internal RegexBudget Budget => _budget;

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
    /// <exception cref="RegexMatchTimeoutException">The matches of this load used up the <see cref="RegexBudget"/>.</exception>
    /// <exception cref="LoraConfigException">The path holds a character beyond U+FFFF, which Python's regex and .NET's would match differently.</exception>
    public bool MatchesTarget(string path)
    {
        if (_translated is null) return _names!.Any(n => NameMatches(path, n));
        if (path.Any(char.IsSurrogate))
        {
            throw new LoraConfigException(nameof(LoraConfig.TargetModulesRegex), _pattern,
                $"module path '{path}' holds a character beyond U+FFFF; Python's re matches it as one code point and .NET as two UTF-16 units, " +
                "so the regex could select other modules than PEFT's; list the module names in TargetModules instead");
        }
        // Each match may run for what is left of the one budget of this load (RegexBudget). A Regex's timeout is fixed
        // when it is built (about 25 µs for a PEFT pattern), so one is reused while its timeout exceeds what is left by
        // at most a twentieth of the limit: the load stops within 5 % of the limit, after about 20 rebuilds at most.
        TimeSpan left = _budget.Next(_pattern!, path);
        if (_regex is null || _regex.MatchTimeout > left + _budget.Limit / 20)
            _regex = new Regex(_translated, _options, left);
        return _regex.IsMatch(path);
    }

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
