using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// One named adapter (PEFT's <c>adapter_name</c>): its options, its layers by path (in the model only while it is
/// active), the base layers they wrap, its modules to save and the report of its injection.
/// </summary>
internal sealed class NamedAdapter(string name, LoraConfig config, Dictionary<string, LoraLayer> layers,
    Dictionary<string, nn.Module> baseModules, IReadOnlyList<string> modulesToSave, InjectionReport report) : IDisposable
{
    /// <summary>The adapter's name.</summary>
    public string Name { get; } = name;

    /// <summary>The adapter's options.</summary>
    public LoraConfig Config { get; } = config;

    /// <summary>The adapter's layers by module path, in model order; a layer tied at two paths appears at both.</summary>
    public Dictionary<string, LoraLayer> Layers { get; } = layers;

    /// <summary>The base layer at each adapted path, which sits there whenever this adapter is not active.</summary>
    public Dictionary<string, nn.Module> BaseModules { get; } = baseModules;

    /// <summary>The paths of the modules this adapter trains in full, in model order.</summary>
    public IReadOnlyList<string> ModulesToSave { get; } = modulesToSave;

    /// <summary>Which modules were adapted and which targets matched nothing.</summary>
    public InjectionReport Report { get; } = report;

    /// <summary>False for an adapter loaded for inference: its modules to save stay frozen when active.</summary>
    public bool ModulesToSaveTrainable { get; set; } = true;

    /// <summary>Disposes the adapter's layers (each once, however many paths it sits at).</summary>
    public void Dispose()
    {
        foreach (var layer in Layers.Values.Distinct()) layer.Dispose();
    }
}
