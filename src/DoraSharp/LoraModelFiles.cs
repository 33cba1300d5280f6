using DoraSharp.IO;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// A <see cref="LoraModel"/>'s adapter files (PEFT's <c>save_pretrained</c>, <c>from_pretrained</c>, <c>load_adapter</c>):
/// <see cref="AdapterFiles"/> reads and writes them, the <see cref="InjectionPlan"/> a load's file is checked against
/// is the one it injects, and a load changes the model only once the whole file is checked. The dependency runs
/// one way: this class uses IO; IO knows nothing of <see cref="LoraModel"/>.
/// </summary>
internal static class LoraModelFiles
{
    /// <summary>Writes the adapters of <paramref name="lora"/> (all, or <see cref="AdapterSaveOptions.SelectedAdapters"/>).</summary>
    public static void Save(LoraModel lora, string directory, AdapterSaveOptions? options, Action<string>? afterStep = null)
    {
        ArgumentNullException.ThrowIfNull(lora);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new AdapterSaveOptions();
        var names = options.SelectedAdapters ?? lora.AdapterNames;
        if (names.Count == 0) throw new ArgumentException("AdapterSaveOptions.SelectedAdapters is empty; name at least one adapter, or leave it null to save them all.", nameof(options));
        // LayersOf names the adapters there are when one is unknown.
        foreach (var name in names) lora.LayersOf(name);
        var adapters = names.Distinct(StringComparer.Ordinal).Select(name => State(lora, name)).ToList();
        AdapterFiles.Save(directory, adapters, options, lora.Model.GetType(), afterStep);
    }

    /// <summary>
    /// Attaches the adapter in <paramref name="directory"/> to <paramref name="model"/> and loads its weights
    /// (<see cref="LoraModel.LoadAdapter(nn.Module, string, bool, string)"/>); one regex time budget for the whole load.
    /// </summary>
    public static LoraModel Load(nn.Module model, string directory, bool isTrainable, string adapterName, RegexBudget budget)
    {
        ArgumentNullException.ThrowIfNull(model);
        AdapterSource source = AdapterFiles.Open(directory);
        var view = AdapterRegistry.BaseView(model, owns: null);
        var wrapped = view.FirstOrDefault(m => m.Module is LoraLayer);
        if (model is LoraLayer || wrapped.Module is not null)
        {
            throw new InvalidOperationException(
                $"The model already has an adapter{(wrapped.Module is null ? "" : $" at '{wrapped.Path}'")}. Load the weights into its " +
                "LoraModel with LoadAdapterWeights, add it beside with LoadAdapter(directory, name), or Unload() it first to load a different adapter.");
        }
        InjectionPlan plan = AdapterFiles.Plan(source, view, budget);
        using AdapterWeights weights = AdapterWeights.Read(source.TensorsPath, AdapterLayout.ForPlan(plan));

        // Everything is checked; from here on the model changes, and any failure undoes it.
        var requiresGrad = model.parameters().Select(p => (Parameter: p, Flag: p.requires_grad)).ToList();
        LoraModel lora;
        try
        {
            lora = LoraModel.Inject(model, plan, adapterName);
        }
        catch (LoraConfigException e)
        {
            Restore(requiresGrad);
            throw AdapterFiles.InjectionRefusal(source, e, view.Count, budget);
        }
        catch
        {
            Restore(requiresGrad);
            throw;
        }
        try
        {
            Fill(lora, adapterName, weights, isTrainable);
        }
        catch
        {
            lora.Unload();
            Restore(requiresGrad);
            throw;
        }
        if (!isTrainable) model.eval(); // PEFT's from_pretrained: `if not is_trainable: self.eval()`
        return lora;
    }

    /// <summary>Adds the adapter in <paramref name="directory"/> beside <paramref name="lora"/>'s adapters (<see cref="LoraModel.LoadAdapter(string, string, bool)"/>).</summary>
    public static void LoadInto(LoraModel lora, string directory, string adapterName, bool isTrainable)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (lora.AdapterNames.Contains(adapterName, StringComparer.Ordinal))
            throw new ArgumentException($"An adapter named '{adapterName}' exists already (adapters: {string.Join(", ", lora.AdapterNames)}); choose another name or DeleteAdapter it first.", nameof(adapterName));
        AdapterSource source = AdapterFiles.Open(directory);
        var budget = new RegexBudget();
        var view = lora.Registry.BaseView();
        InjectionPlan plan = AdapterFiles.Plan(source, view, budget);
        using AdapterWeights weights = AdapterWeights.Read(source.TensorsPath, AdapterLayout.ForPlan(plan));

        lora.ThrowIfUnloaded();
        lora.CheckNewAdapterName(adapterName);
        lora.ThrowIfMerged($"add adapter '{adapterName}'");
        try
        {
            lora.AddPlanned(adapterName, plan);
        }
        catch (LoraConfigException e)
        {
            throw AdapterFiles.InjectionRefusal(source, e, view.Count, budget);
        }
        try
        {
            Fill(lora, adapterName, weights, isTrainable);
        }
        catch
        {
            lora.DeleteAdapter(adapterName);
            throw;
        }
        if (!isTrainable) lora.Model.eval(); // PEFT's load_adapter: `if not is_trainable: self.eval()`
    }

    /// <summary>Loads the weights in <paramref name="directory"/> into <paramref name="lora"/>'s active adapter (<see cref="LoraModel.LoadAdapterWeights"/>).</summary>
    public static void LoadWeights(LoraModel lora, string directory)
    {
        ArgumentNullException.ThrowIfNull(lora);
        if (lora.IsMerged)
        {
            throw new InvalidOperationException("The adapters are merged into the base weights; Unmerge() before loading other adapter weights.");
        }
        AdapterState mine = State(lora, lora.ActiveAdapter);
        AdapterSource source = AdapterFiles.Open(directory);
        // The checks a load makes, on the base layers under the adapters: a file a load refuses is refused here with the
        // same message (its target_modules and modules_to_save are not ignored).
        InjectionPlan filePlan = AdapterFiles.Plan(source, lora.Registry.BaseView(), new RegexBudget());
        using AdapterWeights weights = AdapterFiles.ReadWeightsFor(mine, source, filePlan);

        // Validated, so copy_ cannot fail on shape or dtype; keep the old values anyway to undo a failure midway.
        var parameters = mine.Targets();
        var backup = parameters.Select(p => p.detach().clone()).ToList();
        try
        {
            weights.CopyInto(mine);
            lora.InvalidateCaches();
        }
        catch
        {
            using (no_grad())
            {
                for (int i = 0; i < parameters.Count; i++) parameters[i].copy_(backup[i]);
            }
            lora.InvalidateCaches();
            throw;
        }
        finally
        {
            backup.ForEach(t => t.Dispose());
        }
    }

    /// <summary>The live tensors of adapter <paramref name="adapterName"/> as its files hold them.</summary>
    private static AdapterState State(LoraModel lora, string adapterName)
    {
        var registry = lora.Registry;
        return new AdapterState(adapterName, lora.Configs[adapterName], lora.LayersOf(adapterName), lora.ModulesToSaveOf(adapterName),
            path => registry.ModuleToSaveValues(adapterName, path), registry.BaseView());
    }

    /// <summary>Copies a checked file's weights into a new adapter and sets whether it trains (PEFT's <c>is_trainable</c>).</summary>
    private static void Fill(LoraModel lora, string adapterName, AdapterWeights weights, bool isTrainable)
    {
        weights.CopyInto(State(lora, adapterName));
        lora.InvalidateCaches();
        lora.Registry.SetTrainable(adapterName, isTrainable);
    }

    private static void Restore(List<(Parameter Parameter, bool Flag)> requiresGrad)
    {
        foreach ((Parameter parameter, bool flag) in requiresGrad) parameter.requires_grad = flag;
    }
}
