using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>
/// The live tensors of one adapter as its files hold them: its layers by module path and its copies of the modules
/// to save. A save reads them, a load copies into them; IO needs nothing else of the model that holds the adapter.
/// </summary>
/// <param name="Name">The adapter's name (PEFT's <c>adapter_name</c>).</param>
/// <param name="Config">The adapter's options.</param>
/// <param name="Layers">The adapter's layers by module path, in model order.</param>
/// <param name="ModulesToSave">The paths of the modules the adapter trains in full, in model order.</param>
/// <param name="SavedValues">The adapter's copy of a module to save, by the module's state-dict names (live tensors).</param>
/// <param name="View">The model's modules as the adapter sees them (base layers where adapter layers sit).</param>
internal sealed record AdapterState(string Name, LoraConfig Config, IReadOnlyDictionary<string, LoraLayer> Layers,
    IReadOnlyList<string> ModulesToSave, Func<string, IReadOnlyDictionary<string, Tensor>> SavedValues,
    IReadOnlyList<(string Path, nn.Module Module)> View)
{
    /// <summary>The keys, shapes and modules this adapter's file holds.</summary>
    public AdapterLayout Layout { get; } = AdapterLayout.ForAdapter(Config, Layers, ModulesToSave, View);

    /// <summary>
    /// Every tensor the adapter's file holds, under PEFT's keys: lora_A, lora_B and (DoRA) the magnitude of each
    /// adapted module, then the modules to save's entries. Detached views of the live tensors: dispose them.
    /// </summary>
    public List<KeyValuePair<string, Tensor>> Tensors()
    {
        var tensors = new List<KeyValuePair<string, Tensor>>();
        foreach (AdapterSlot slot in Layout.Slots)
        {
            var layer = Layers[slot.Path];
            tensors.Add(new(slot.Key(AdapterTensorKind.LoraA), layer.LoraA.detach()));
            tensors.Add(new(slot.Key(AdapterTensorKind.LoraB), layer.LoraB.detach()));
            if (Layout.UseDora)
            {
                // Already in PEFT's shape: (out), (embedding_dim), or (1, out, 1, 1) for a Conv2d.
                tensors.Add(new(slot.Key(AdapterTensorKind.Magnitude), layer.Magnitude!.detach()));
            }
        }
        // PEFT's ModulesToSaveWrapper.adapter_state_dict: the adapter's copy of the module, under the module's own names.
        foreach (SavedModuleSlot module in Layout.SavedModules)
        {
            foreach (var (name, value) in SavedValues(module.Path))
                tensors.Add(new(module.Key(name), value.detach()));
        }
        return tensors;
    }

    /// <summary>Every parameter a load writes into: the layers' adapter parameters and the modules to save's values.</summary>
    public List<Tensor> Targets() =>
        Layers.Values.Distinct().SelectMany(l => l.AdapterParameters().Select(p => (Tensor)p.Parameter))
            .Concat(Layout.SavedModules.SelectMany(m => SavedValues(m.Path).Values))
            .ToList();
}
