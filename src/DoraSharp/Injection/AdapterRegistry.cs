using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// The named adapters of one model and which one is active (PEFT's <c>BaseTuner</c> bookkeeping: <c>peft_config</c>,
/// <c>active_adapter</c>, <c>set_adapter</c>, <c>delete_adapter</c>, <c>enable/disable_adapter_layers</c>).
/// Each adapter has its own layers, built on the shared base layers; only the active adapter's layers are in the
/// model (the base layer sits where it has none), so switching is a swap of modules in the tree and the other
/// adapters' parameters stay untouched. Modules to save swap their value sets alongside (<see cref="ModuleToSave"/>).
/// </summary>
internal sealed class AdapterRegistry(nn.Module model)
{
    private readonly Dictionary<string, NamedAdapter> _adapters = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];
    // Every path some adapter adapts → the base module that sits there when no adapter does.
    private readonly Dictionary<string, nn.Module> _baseModules = new(StringComparer.Ordinal);
    // Every module some adapter trains in full (modules_to_save), by path.
    private readonly Dictionary<string, ModuleToSave> _modulesToSave = new(StringComparer.Ordinal);
    private bool _enabled = true;
    private bool _useReferenceDora;

    /// <summary>The adapted model.</summary>
    public nn.Module Model { get; } = model;

    /// <summary>The active adapter's name (the first adapter registered until another is activated).</summary>
    public string Active { get; private set; } = "";

    /// <summary>The adapter names in the order they were added.</summary>
    public IReadOnlyList<string> Names => _order;

    /// <summary>The number of adapters.</summary>
    public int Count => _adapters.Count;

    /// <summary>True once the adapters were unloaded (the names and configs stay readable).</summary>
    public bool IsUnloaded { get; private set; }

    /// <summary>The paths some adapter adapts.</summary>
    public IReadOnlyCollection<string> AdaptedPaths => _baseModules.Keys;

    /// <summary>The paths some adapter trains in full.</summary>
    public IReadOnlyCollection<string> SavedPaths => _modulesToSave.Keys;

    /// <summary>The active adapter.</summary>
    public NamedAdapter ActiveAdapter => _adapters[Active];

    /// <summary>True while the active adapter is folded into the base weights.</summary>
    public bool IsMerged => ActiveAdapter.Layers.Values.Any(l => l.IsMerged);

    /// <summary>Whether the active adapter computes (PEFT's enable/disable_adapter_layers); applied to layers and modules to save.</summary>
    public bool Enabled
    {
        get => _enabled;
        set { _enabled = value; ApplySwitches(); LoadModulesToSave(); }
    }

    /// <summary>Whether the active adapter's DoRA layers compute PEFT's literal formula instead of the fast path.</summary>
    public bool UseReferenceDora
    {
        get => _useReferenceDora;
        set { _useReferenceDora = value; ApplySwitches(); }
    }

    /// <summary>True when an adapter is named <paramref name="adapterName"/>.</summary>
    public bool Contains(string adapterName) => _adapters.ContainsKey(adapterName);

    /// <summary>The adapter named <paramref name="adapterName"/>.</summary>
    /// <exception cref="ArgumentException">No adapter has that name; the message lists the adapters.</exception>
    public NamedAdapter Get(string adapterName)
    {
        ArgumentNullException.ThrowIfNull(adapterName);
        return _adapters.TryGetValue(adapterName, out var adapter)
            ? adapter
            : throw new ArgumentException($"No adapter is named '{adapterName}'; the adapters are: {Listing(_order)}.", nameof(adapterName));
    }

    /// <summary>
    /// Records the adapter's layers, base modules and modules to save (its layers are not placed yet); the first
    /// adapter registered becomes the active one.
    /// </summary>
    public void Register(NamedAdapter adapter)
    {
        _adapters[adapter.Name] = adapter;
        _order.Add(adapter.Name);
        if (_order.Count == 1) Active = adapter.Name;
        foreach (var (path, module) in adapter.BaseModules) _baseModules.TryAdd(path, module);
        foreach (var path in adapter.ModulesToSave)
        {
            if (!_modulesToSave.TryGetValue(path, out var saved))
                _modulesToSave[path] = saved = new ModuleToSave(path, ModuleSurgery.Find(Model, path));
            saved.Add(adapter.Name);
        }
    }

    /// <summary>Removes a registered adapter that is not in the model (inactive, or never placed) and disposes its layers.</summary>
    public void Forget(NamedAdapter adapter)
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
    public void Place(string? adapterName)
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

    /// <summary>Makes <paramref name="adapterName"/> the active adapter: its layers in the model, the switches and its modules to save applied.</summary>
    public void Activate(string adapterName)
    {
        Place(adapterName);
        Active = adapterName;
        ApplySwitches();
        LoadModulesToSave();
    }

    /// <summary>
    /// Sets whether adapter <paramref name="adapterName"/> trains: its LoRA parameters and, while it is active, its
    /// modules to save (PEFT's <c>is_trainable</c> on load).
    /// </summary>
    public void SetTrainable(string adapterName, bool trainable)
    {
        var adapter = Get(adapterName);
        foreach (var layer in adapter.Layers.Values.Distinct())
            foreach (var (_, parameter) in layer.AdapterParameters()) parameter.requires_grad = trainable;
        adapter.ModulesToSaveTrainable = trainable;
        LoadModulesToSave();
    }

    /// <summary>Gives every module to save the values it should compute with now: the active adapter's copy, or the original.</summary>
    public void LoadModulesToSave()
    {
        foreach (var saved in _modulesToSave.Values)
        {
            var holder = _enabled && saved.Adapters.Contains(Active) ? Active : ModuleToSave.Original;
            saved.Load(holder, trainable: ActiveAdapter.ModulesToSaveTrainable);
        }
    }

    /// <summary>
    /// The values of adapter <paramref name="adapterName"/>'s copy of module <paramref name="path"/> by the module's
    /// state-dict names (live tensors: do not dispose them).
    /// </summary>
    /// <exception cref="ArgumentException">No adapter has that name, or it does not train that module in full.</exception>
    public IReadOnlyDictionary<string, Tensor> ModuleToSaveValues(string adapterName, string path)
    {
        var adapter = Get(adapterName);
        if (!adapter.ModulesToSave.Contains(path))
            throw new ArgumentException($"Adapter '{adapterName}' trains no module '{path}' in full; its modules to save are: {Listing(adapter.ModulesToSave)}.", nameof(path));
        return _modulesToSave[path].Values(adapterName);
    }

    /// <summary>
    /// The model's modules as the adapters see them: at a path where one of these adapters' layers sits, its base
    /// layer (and not the layer's own lora_A, lora_B …), so every adapter is planned on the base model whichever
    /// adapter is active. Another model's adapter layers are shown as they are (a plan refuses to adapt them again).
    /// </summary>
    public List<(string Path, nn.Module Module)> BaseView() => BaseView(Model, Owns);

    /// <summary>The modules of <paramref name="model"/> with the adapter layers <paramref name="owns"/> accepts shown as their base layers.</summary>
    public static List<(string Path, nn.Module Module)> BaseView(nn.Module model, Func<LoraLayer, bool>? owns)
    {
        var all = ModuleSurgery.Descendants(model);
        var inside = all.Where(m => m.Module is LoraLayer).Select(m => m.Path + ".").ToList();
        return all.Where(m => !inside.Any(p => m.Path.StartsWith(p, StringComparison.Ordinal)))
                  .Select(m => m.Module is LoraLayer l && owns is not null && owns(l) ? (m.Path, l.BaseLayer) : m)
                  .ToList();
    }

    /// <summary>
    /// Puts the base layers back and drops every adapter's layers; modules to save keep the active adapter's values.
    /// The names and configs stay readable.
    /// </summary>
    public void Unload()
    {
        Place(null);
        foreach (var saved in _modulesToSave.Values)
        {
            if (saved.Adapters.Contains(Active)) saved.Load(Active, trainable: false);
            saved.Dispose();
        }
        _modulesToSave.Clear();
        _baseModules.Clear();
        foreach (var adapter in _adapters.Values) adapter.Dispose();
        IsUnloaded = true;
    }

    /// <summary>Drops every adapter's cached DoRA norms.</summary>
    public void InvalidateCaches()
    {
        foreach (var l in _adapters.Values.SelectMany(a => a.Layers.Values)) l.InvalidateCache();
    }

    /// <summary>"a, b" or "(none)", for messages.</summary>
    public static string Listing(IEnumerable<string> names) => names.Any() ? string.Join(", ", names) : "(none)";

    private bool Owns(LoraLayer layer) => _adapters.Values.Any(a => a.Layers.ContainsValue(layer));

    /// <summary>Applies the model-wide switches (enabled, reference DoRA) to the active adapter's layers.</summary>
    private void ApplySwitches()
    {
        foreach (var l in ActiveAdapter.Layers.Values)
        {
            l.AdapterEnabled = _enabled;
            l.UseReferenceDora = _useReferenceDora;
            l.InvalidateCache();
        }
    }
}
