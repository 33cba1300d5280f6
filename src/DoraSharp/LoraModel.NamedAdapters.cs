using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// Named adapters: several adapters on one model, one of them active (PEFT's <c>add_adapter</c>,
/// <c>set_adapter</c>, <c>delete_adapter</c>). Each adapter has its own layers, built on the shared base layers;
/// only the active adapter's layers are in the model (the base layer sits where it has none), so switching is a
/// swap of modules in the tree and the other adapters' parameters stay untouched. Modules to save swap their
/// value sets alongside (<see cref="ModuleToSave"/>).
/// </summary>
public sealed partial class LoraModel
{
    /// <summary>
    /// Adds a second (third, …) adapter named <paramref name="adapterName"/>, built from <paramref name="config"/>
    /// on the base layers (its targets may differ from the other adapters'); PEFT's <c>add_adapter</c>. Like PEFT
    /// it does not activate the new adapter: call <see cref="SetAdapter"/>. On any error nothing changes.
    /// </summary>
    /// <exception cref="ArgumentException">The name is empty, invalid as a folder name, or taken.</exception>
    /// <exception cref="LoraConfigException">An option is invalid or the targets match no supported layer.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer sits where an adapter cannot replace it, or a module is both an adapter target and a module to save of different adapters.</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged (unmerge first), or the adapters were unloaded.</exception>
    public void AddAdapter(string adapterName, LoraConfig config) => AddAdapterWithBudget(adapterName, config, budget: null);

    /// <summary>As the public overload; a load passes the <see cref="RegexBudget"/> its file checks already drew on.</summary>
    internal void AddAdapterWithBudget(string adapterName, LoraConfig config, RegexBudget? budget)
    {
        ThrowIfUnloaded();
        ArgumentNullException.ThrowIfNull(config);
        CheckAdapterName(adapterName);
        if (_adapters.ContainsKey(adapterName))
            throw new ArgumentException($"An adapter named '{adapterName}' exists already (adapters: {string.Join(", ", _order)}); delete it first or choose another name.", nameof(adapterName));
        config.Validate();
        ThrowIfMerged($"add adapter '{adapterName}'");

        var adapter = Build(adapterName, config, BaseView(Model, this), budget);
        var conflict = adapter.ModulesToSave.FirstOrDefault(m => _baseModules.Keys.Any(p => IsWithin(p, m)))
                       ?? adapter.Layers.Keys.FirstOrDefault(p => _modulesToSave.Keys.Any(m => IsWithin(p, m)));
        if (conflict is not null)
        {
            adapter.Dispose();
            throw new AdapterInjectionException(
                $"Module '{conflict}' would be trained in full (modules_to_save) by one adapter and carry a LoRA adapter of another; a module can be only one of the two.");
        }
        Register(adapter);
        try
        {
            // Put the new layers in once and take them out again: a slot that refuses an adapter fails here, not in SetAdapter.
            Place(adapterName);
            Place(_active);
        }
        catch
        {
            Forget(adapter);
            throw;
        }
    }

    /// <summary>
    /// Makes <paramref name="adapterName"/> the adapter the model computes with and trains; PEFT's <c>set_adapter</c>.
    /// The other adapters stay attached, unchanged, and their parameters leave the model's <c>parameters()</c> until
    /// they are active again. Switching is exact: the model computes what it computed when that adapter was last active.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    /// <exception cref="InvalidOperationException">The active adapter is merged (unmerge first, as PEFT requires), or the adapters were unloaded.</exception>
    public void SetAdapter(string adapterName)
    {
        ThrowIfUnloaded();
        var adapter = Get(adapterName);
        if (adapterName == _active) return;
        ThrowIfMerged($"switch to adapter '{adapterName}'");
        Place(adapter.Name);
        _active = adapter.Name;
        ApplySwitches();
        LoadModulesToSave();
    }

    /// <summary>
    /// Deletes the adapter <paramref name="adapterName"/>; PEFT's <c>delete_adapter</c>. If it was active, the first
    /// remaining adapter (in the order they were added) becomes active, as in PEFT. The last adapter cannot be
    /// deleted: <see cref="Unload"/> removes it and returns the base model.
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    /// <exception cref="InvalidOperationException">It is the only adapter, or it is active and merged, or the adapters were unloaded.</exception>
    public void DeleteAdapter(string adapterName)
    {
        ThrowIfUnloaded();
        var adapter = Get(adapterName);
        if (_adapters.Count == 1)
            throw new InvalidOperationException($"Adapter '{adapterName}' is the only adapter; call Unload() to remove it and get the base model back.");
        if (adapterName == _active)
        {
            ThrowIfMerged($"delete adapter '{adapterName}'");
            SetAdapter(_order.First(n => n != adapterName));
        }
        Forget(adapter);
    }

    /// <summary>The layers of adapter <paramref name="adapterName"/> by module path (in the model only while it is active).</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyDictionary<string, LoraLayer> LayersOf(string adapterName) { ThrowIfUnloaded(); return Get(adapterName).Layers; }

    /// <summary>The paths of adapter <paramref name="adapterName"/>'s modules to save, in model order.</summary>
    /// <exception cref="ArgumentException">No adapter has that name.</exception>
    public IReadOnlyList<string> ModulesToSaveOf(string adapterName) => Get(adapterName).ModulesToSave;

    /// <summary>
    /// The values of adapter <paramref name="adapterName"/>'s copy of module <paramref name="path"/> (one of its
    /// <see cref="ModulesToSaveOf"/>) by the module's state-dict names. The tensors are live: do not dispose them.
    /// </summary>
    public IReadOnlyDictionary<string, Tensor> ModuleToSaveValues(string adapterName, string path)
    {
        ThrowIfUnloaded();
        var adapter = Get(adapterName);
        if (!adapter.ModulesToSave.Contains(path))
            throw new ArgumentException($"Adapter '{adapterName}' trains no module '{path}' in full; its modules to save are: {Listing(adapter.ModulesToSave)}.", nameof(path));
        return _modulesToSave[path].Values(adapterName);
    }

    /// <summary>
    /// Sets whether adapter <paramref name="adapterName"/> trains: its LoRA parameters and, while it is active, its
    /// modules to save (PEFT's <c>is_trainable</c> on load).
    /// </summary>
    internal void SetTrainable(string adapterName, bool trainable)
    {
        var adapter = Get(adapterName);
        foreach (var layer in adapter.Layers.Values.Distinct())
            foreach (var (_, parameter) in layer.AdapterParameters()) parameter.requires_grad = trainable;
        adapter.ModulesToSaveTrainable = trainable;
        LoadModulesToSave();
    }

    private static void CheckAdapterName(string adapterName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(adapterName);
        // PEFT saves a non-default adapter in a sub-folder named after it, and keys must stay parseable.
        if (adapterName is "." or ".." || adapterName.IndexOfAny(['/', '\\', '.', '\0']) >= 0 || adapterName.Trim() != adapterName)
            throw new ArgumentException(
                $"Adapter name '{adapterName}' is invalid: it names a sub-folder when saved, so it may not contain '/', '\\', '.' or NUL, nor start or end with spaces.",
                nameof(adapterName));
    }

    private NamedAdapter Get(string adapterName)
    {
        ArgumentNullException.ThrowIfNull(adapterName);
        return _adapters.TryGetValue(adapterName, out var adapter)
            ? adapter
            : throw new ArgumentException($"No adapter is named '{adapterName}'; the adapters are: {Listing(_order)}.", nameof(adapterName));
    }

    private static string Listing(IEnumerable<string> names) => names.Any() ? string.Join(", ", names) : "(none)";

    private void ThrowIfMerged(string action)
    {
        if (IsMerged)
            throw new InvalidOperationException($"Cannot {action}: adapter '{_active}' is merged into the base weights; call Unmerge() first.");
    }

    /// <summary>Records the adapter's layers, base modules and modules to save (its layers are not placed yet).</summary>
    private void Register(NamedAdapter adapter)
    {
        _adapters[adapter.Name] = adapter;
        _order.Add(adapter.Name);
        foreach (var (path, module) in adapter.BaseModules) _baseModules.TryAdd(path, module);
        foreach (var path in adapter.ModulesToSave)
        {
            if (!_modulesToSave.TryGetValue(path, out var saved))
                _modulesToSave[path] = saved = new ModuleToSave(path, ModuleSurgery.Find(Model, path));
            saved.Add(adapter.Name);
        }
    }

    /// <summary>Removes a registered adapter that is not in the model (inactive, or never placed) and disposes its layers.</summary>
    private void Forget(NamedAdapter adapter)
    {
        _adapters.Remove(adapter.Name);
        _order.Remove(adapter.Name);
        foreach (var path in adapter.BaseModules.Keys)
            if (!_adapters.Values.Any(a => a.BaseModules.ContainsKey(path))) _baseModules.Remove(path);
        foreach (var path in adapter.ModulesToSave)
        {
            if (!_modulesToSave.TryGetValue(path, out var saved)) continue;
            saved.Remove(adapter.Name);
            if (saved.Adapters.Count == 0)
            {
                _modulesToSave.Remove(path);
                saved.Dispose();
            }
        }
        adapter.Dispose();
    }

    /// <summary>
    /// Puts adapter <paramref name="adapterName"/>'s layers (or, for null, the base layers) at every adapted path, and
    /// the base layer where that adapter has none. Undoes its own swaps if one is refused.
    /// </summary>
    private void Place(string? adapterName)
    {
        var layers = adapterName is null ? null : _adapters[adapterName].Layers;
        var swapped = new List<(string Path, nn.Module From, nn.Module To)>();
        try
        {
            foreach (var (path, baseModule) in _baseModules)
            {
                var current = ModuleSurgery.Find(Model, path);
                nn.Module desired = layers is not null && layers.TryGetValue(path, out var layer) ? layer : baseModule;
                if (ReferenceEquals(current, desired)) continue;
                // The base parameters the model holds now are the ones to keep (.to() may have replaced them).
                var (weight, bias) = current is LoraLayer from ? (from.Weight, from.Bias) : (current.get_parameter("weight")!, current.get_parameter("bias"));
                if (desired is LoraLayer to) to.AdoptBase(weight, bias);
                else if (current is LoraLayer leaving) desired = leaving.Unload(); // hands the current parameters to the base layer
                ModuleSurgery.Replace(Model, path, current, desired);
                swapped.Add((path, current, desired));
            }
        }
        catch
        {
            for (var i = swapped.Count - 1; i >= 0; i--) ModuleSurgery.Replace(Model, swapped[i].Path, swapped[i].To, swapped[i].From);
            throw;
        }
    }

    /// <summary>Applies the model-wide switches (enabled, reference DoRA) to the active adapter's layers.</summary>
    private void ApplySwitches()
    {
        foreach (var l in _adapters[_active].Layers.Values)
        {
            l.AdapterEnabled = _enabled;
            l.UseReferenceDora = _useReferenceDora;
            l.InvalidateCache();
        }
    }

    /// <summary>Gives every module to save the values it should compute with now: the active adapter's copy, or the original.</summary>
    private void LoadModulesToSave()
    {
        foreach (var saved in _modulesToSave.Values)
        {
            var holder = _enabled && saved.Adapters.Contains(_active) ? _active : ModuleToSave.Original;
            saved.Load(holder, trainable: _adapters[_active].ModulesToSaveTrainable);
        }
    }

    /// <summary>One named adapter: its options, its layers (in the model while active) and its modules to save.</summary>
    private sealed class NamedAdapter(string name, LoraConfig config, Dictionary<string, LoraLayer> layers,
        Dictionary<string, nn.Module> baseModules, List<string> modulesToSave, InjectionReport report) : IDisposable
    {
        public string Name { get; } = name;
        public LoraConfig Config { get; } = config;
        public Dictionary<string, LoraLayer> Layers { get; } = layers;
        public Dictionary<string, nn.Module> BaseModules { get; } = baseModules;
        public List<string> ModulesToSave { get; } = modulesToSave;
        public InjectionReport Report { get; } = report;

        /// <summary>False for an adapter loaded for inference: its modules to save stay frozen when active.</summary>
        public bool ModulesToSaveTrainable { get; set; } = true;

        public void Dispose()
        {
            foreach (var layer in Layers.Values.Distinct()) layer.Dispose();
        }
    }
}
