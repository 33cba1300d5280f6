using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;
using TorchSharp.Modules;

namespace DoraSharp;

/// <summary>
/// Which modules of a model one adapter adapts and which it trains in full, decided from the model and a
/// <see cref="LoraConfig"/> alone, without changing either: PEFT's <c>BaseTuner.inject_adapter</c> target selection
/// (<c>check_target_module_exists</c>, <c>_check_exclude_modules</c>, <c>_set_trainable</c>) as a pure function.
/// </summary>
/// <remarks>
/// This is the only place the selection rules live. <see cref="LoraModel.Wrap"/>, <see cref="LoraModel.AddAdapter"/>
/// and every adapter load compute one plan and inject exactly it: a load checks its file against the same plan it
/// then injects, so the two can never disagree. The rules (matching in <see cref="TargetMatcher"/>):
/// <list type="number">
/// <item>modules to save: the outermost modules whose path ends with a <see cref="LoraConfig.ModulesToSave"/> entry;
/// none found is refused, as is one module reached by two paths;</item>
/// <item>a module the targets match is passed over (excluded) when <see cref="LoraConfig.ExcludeModules"/> names it or
/// it is, or lies inside, a module to save;</item>
/// <item>otherwise a supported layer (Linear, Embedding, Conv2d) is a target; a layer that already has an adapter is
/// refused; a leaf of another type named by a target list entry is refused (PEFT raises too); containers and regex
/// hits on other types are simply not adaptable.</item>
/// </list>
/// A plan with no target is returned, not refused: each caller words that refusal for its own input
/// (<see cref="NoTargets"/> for Wrap, the config file for a load).
/// </remarks>
internal sealed class InjectionPlan
{
    private InjectionPlan(LoraConfig config, IReadOnlyList<(string Path, nn.Module Module)> view,
        IReadOnlyList<(string Path, nn.Module Module)> targets, IReadOnlyList<string> modulesToSave,
        IReadOnlyList<(string Path, nn.Module Module)> excluded, IReadOnlyList<string> unmatchedTargets)
    {
        Config = config;
        View = view;
        Targets = targets;
        ModulesToSave = modulesToSave;
        Excluded = excluded;
        UnmatchedTargets = unmatchedTargets;
    }

    /// <summary>The adapter's options.</summary>
    public LoraConfig Config { get; }

    /// <summary>The model's modules as the plan saw them (adapter layers of the same model shown as their base layers).</summary>
    public IReadOnlyList<(string Path, nn.Module Module)> View { get; }

    /// <summary>The base layers that get an adapter, in model order; one instance at two paths (weight tying) appears twice.</summary>
    public IReadOnlyList<(string Path, nn.Module Module)> Targets { get; }

    /// <summary>The paths of the modules trained in full (<see cref="LoraConfig.ModulesToSave"/>), in model order.</summary>
    public IReadOnlyList<string> ModulesToSave { get; }

    /// <summary>The modules the targets match that exclude_modules or modules_to_save leave out, of any type, in model order.</summary>
    public IReadOnlyList<(string Path, nn.Module Module)> Excluded { get; }

    /// <summary>The target list entries that match no module (empty for a regex); PEFT accepts these.</summary>
    public IReadOnlyList<string> UnmatchedTargets { get; }

    /// <summary>The paths of the view's supported layers, for messages that list what could be targeted.</summary>
    public IReadOnlyList<string> Adaptable => View.Where(m => LoraLayerFactory.IsSupported(m.Module)).Select(m => m.Path).ToList();

    /// <summary>True when some module of the view is a convolution (adapted or not): gradients flow through it.</summary>
    public bool HasConvolution => View.Any(m => m.Module is Convolution);

    /// <summary>
    /// The plan of <paramref name="config"/> on <paramref name="view"/> (a model's <c>(path, module)</c> pairs, depth
    /// first, as <see cref="ModuleSurgery.Descendants"/> lists them).
    /// </summary>
    /// <param name="view">The model's modules.</param>
    /// <param name="config">The adapter's options, already validated.</param>
    /// <param name="budget">The regex time budget of the whole operation; null for a new one.</param>
    /// <exception cref="LoraConfigException">
    /// modules_to_save matches no module (<see cref="LoraConfig.ModulesToSave"/>); the regex used up the budget
    /// (<see cref="LoraConfig.TargetModulesRegex"/>, the inner exception is the <see cref="RegexMatchTimeoutException"/>)
    /// or meets a path it cannot be trusted on; a target list entry names a leaf of an unsupported type
    /// (<see cref="LoraConfig.TargetModules"/>).
    /// </exception>
    /// <exception cref="AdapterInjectionException">A targeted layer already has an adapter, or a module to save is reached by two paths.</exception>
    public static InjectionPlan Create(IReadOnlyList<(string Path, nn.Module Module)> view, LoraConfig config, RegexBudget? budget = null)
    {
        ArgumentNullException.ThrowIfNull(view);
        ArgumentNullException.ThrowIfNull(config);
        var matcher = new TargetMatcher(config, budget);
        var toSave = FindModulesToSave(view, config, matcher);
        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<(string Path, nn.Module Module)>();
        foreach (var (path, module) in view)
        {
            bool matches;
            try { matches = matcher.MatchesTarget(path); }
            catch (RegexMatchTimeoutException e)
            {
                throw new LoraConfigException(nameof(LoraConfig.TargetModulesRegex), config.TargetModulesRegex, RegexTimeoutMessage(e, view.Count, matcher.Budget), e);
            }
            if (!matches) continue;
            if (matcher.IsExcluded(path) || toSave.Any(m => IsWithin(path, m))) { excluded.Add((path, module)); continue; }
            if (module is LoraLayer)
                throw new AdapterInjectionException($"Module '{path}' already has an adapter; add more adapters with AddAdapter on its LoraModel, or unload it before wrapping again.");
            if (LoraLayerFactory.IsSupported(module)) { targets.Add((path, module)); continue; }
            if (UnsupportedListedLeaf(config, path, module) is { } refusal) throw refusal;
        }
        return new InjectionPlan(config, view, targets, toSave, excluded, matcher.UnmatchedEntries(view.Select(c => c.Path)));
    }

    /// <summary>
    /// Wrap's refusal of a plan without targets: the option, what it matched not, what was excluded and which
    /// modules could have been adapted.
    /// </summary>
    public LoraConfigException NoTargets()
    {
        var available = Adaptable;
        var value = Config.TargetModules is not null ? $"[{string.Join(", ", Config.TargetModules)}]" : Config.TargetModulesRegex;
        return new LoraConfigException(nameof(LoraConfig.TargetModules), value,
            $"it matches no {LoraLayerFactory.SupportedTypes} module of the model" +
            (Excluded.Count > 0 ? $" that is not excluded (excluded: {string.Join(", ", Excluded.Select(e => e.Path))})" : "") +
            $"; the model's {LoraLayerFactory.SupportedTypes} modules are: " +
            (available.Count == 0 ? "(none)" : string.Join(", ", available)));
    }

    /// <summary>True when <paramref name="path"/> is <paramref name="ancestor"/> or lies inside it.</summary>
    public static bool IsWithin(string path, string ancestor) => path == ancestor || path.StartsWith(ancestor + ".", StringComparison.Ordinal);

    /// <summary>Why a regex was stopped: the pattern, the one budget for all paths, and where it stopped.</summary>
    public static string RegexTimeoutMessage(RegexMatchTimeoutException e, int paths, RegexBudget budget) =>
        $"matching it against the model's {paths} module paths took longer than the {budget.Limit.TotalSeconds:0.###} s allowed for all of them " +
        $"together (stopped at module path '{e.Input}' after {budget.Matches} matches); a pattern with nested quantifiers such as (a+)+ backtracks " +
        "exponentially: simplify it, or list the module names in TargetModules";

    /// <summary>
    /// The modules of <see cref="LoraConfig.ModulesToSave"/> (PEFT's <c>_set_trainable</c>): the outermost modules whose
    /// path ends with an entry. Modules inside one are part of it; a module holding a LoRA layer cannot be one.
    /// </summary>
    private static List<string> FindModulesToSave(IReadOnlyList<(string Path, nn.Module Module)> view, LoraConfig config, TargetMatcher matcher)
    {
        var found = new List<string>();
        if (config.ModulesToSave is not { Count: > 0 }) return found;
        var instances = new Dictionary<nn.Module, string>(ReferenceEqualityComparer.Instance);
        foreach (var (path, module) in view)
        {
            if (!matcher.IsModuleToSave(path) || found.Any(f => path.StartsWith(f + ".", StringComparison.Ordinal))) continue;
            if (instances.TryGetValue(module, out var other))
                throw new AdapterInjectionException($"Modules to save '{other}' and '{path}' are one module reached by two paths (tied weights); train it in full at one path only.");
            instances[module] = path;
            found.Add(path);
        }
        if (found.Count == 0)
            throw new LoraConfigException(nameof(LoraConfig.ModulesToSave), $"[{string.Join(", ", config.ModulesToSave)}]",
                "it matches no module of the model (PEFT matches a module whose dotted path ends with an entry)");
        return found;
    }

    /// <summary>
    /// The refusal of a target list entry that names a leaf module of a type adapters cannot wrap (PEFT raises too), or
    /// null; containers and regex hits on other types are simply not adaptable.
    /// </summary>
    private static LoraConfigException? UnsupportedListedLeaf(LoraConfig config, string path, nn.Module module) =>
        config.TargetModules is not null && !LoraLayerFactory.IsSupported(module) && !module.named_children().Any()
            && config.TargetModules.Any(t => TargetMatcher.NameMatches(path, t))
            ? new LoraConfigException(nameof(LoraConfig.TargetModules), path,
                $"module '{path}' is a {module.GetType().Name}; only {LoraLayerFactory.SupportedTypes} layers can be adapted")
            : null;
}
