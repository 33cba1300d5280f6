using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// One module of <see cref="LoraConfig.ModulesToSave"/>: trained in full beside the adapters and saved with them,
/// PEFT's <c>ModulesToSaveWrapper</c>. PEFT keeps the frozen <c>original_module</c> plus a deep copy per adapter
/// and routes <c>forward</c> to the active adapter's copy (to the original while adapters are disabled).
/// </summary>
/// <remarks>
/// TorchSharp has no generic deep copy of a module, and a wrapper would move the module's keys in the state dict
/// (PEFT's <c>classifier.modules_to_save.default.weight</c>). So the module stays where it is and keeps its own
/// parameter objects — its state-dict keys, the optimizer's references and its <c>forward</c> are unchanged — and
/// the sets of values are swapped in and out instead: the module always holds the values of one "holder", the
/// active adapter's copy or the original, and the others are kept here as detached tensors.
/// </remarks>
internal sealed class ModuleToSave : IDisposable
{
    /// <summary>The holder name of the original (base) values; not a valid adapter name (adapter names have no NUL).</summary>
    public const string Original = "\0original";

    private readonly Dictionary<string, Dictionary<string, Tensor>> _stashed = new(StringComparer.Ordinal);
    private readonly List<string> _adapters = [];

    public ModuleToSave(string path, nn.Module module)
    {
        Path = path;
        Module = module;
        Loaded = Original;
        SetTrainable(false);
    }

    /// <summary>Dotted path of the module in the model.</summary>
    public string Path { get; }

    /// <summary>The module itself (still in the model).</summary>
    public nn.Module Module { get; }

    /// <summary>Whose values the module holds now: an adapter's name or <see cref="Original"/>.</summary>
    public string Loaded { get; private set; }

    /// <summary>The adapters that have a copy of this module.</summary>
    public IReadOnlyList<string> Adapters => _adapters;

    /// <summary>Gives <paramref name="adapter"/> its own copy, starting from the original values (PEFT's deepcopy).</summary>
    public void Add(string adapter)
    {
        using var noGrad = no_grad();
        var source = Loaded == Original ? State() : _stashed[Original];
        _stashed[adapter] = source.ToDictionary(kv => kv.Key, kv => Keep(kv.Value.detach().clone()), StringComparer.Ordinal);
        _adapters.Add(adapter);
    }

    /// <summary>Puts <paramref name="holder"/>'s values into the module; trainable only for an adapter's copy.</summary>
    public void Load(string holder, bool trainable)
    {
        if (holder != Loaded)
        {
            using var noGrad = no_grad();
            var incoming = _stashed[holder];
            var state = State();
            _stashed[Loaded] = state.ToDictionary(kv => kv.Key, kv => Keep(kv.Value.detach().clone()), StringComparer.Ordinal);
            foreach (var (name, tensor) in state) tensor.copy_(incoming[name]);
            foreach (var t in incoming.Values) t.Dispose();
            _stashed.Remove(holder);
            Loaded = holder;
        }
        SetTrainable(trainable && holder != Original);
    }

    /// <summary>Drops <paramref name="adapter"/>'s copy; the module returns to the original values if it held that copy.</summary>
    public void Remove(string adapter)
    {
        if (Loaded == adapter) Load(Original, trainable: false);
        if (_stashed.Remove(adapter, out var values))
            foreach (var t in values.Values) t.Dispose();
        _adapters.Remove(adapter);
    }

    /// <summary>The current values of <paramref name="adapter"/>'s copy by state-dict name (live tensors: do not dispose).</summary>
    public IReadOnlyDictionary<string, Tensor> Values(string adapter)
        => adapter == Loaded ? State() : _stashed[adapter];

    /// <summary>The module's own state entries (parameters and persistent buffers) by state-dict name.</summary>
    public Dictionary<string, Tensor> State()
        => Module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);

    private void SetTrainable(bool trainable)
    {
        foreach (var p in Module.parameters()) p.requires_grad = trainable;
    }

    private static Tensor Keep(Tensor t)
    {
        t.DetachFromDisposeScope();
        return t;
    }

    public void Dispose()
    {
        foreach (var values in _stashed.Values)
            foreach (var t in values.Values) t.Dispose();
        _stashed.Clear();
    }
}
