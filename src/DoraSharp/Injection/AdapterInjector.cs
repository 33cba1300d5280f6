using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// Builds the adapter layers an <see cref="InjectionPlan"/> calls for (PEFT's <c>_create_and_replace</c> without the
/// replace: placing them in the model is <see cref="AdapterRegistry"/>'s job, through <see cref="ModuleSurgery"/>).
/// </summary>
internal static class AdapterInjector
{
    /// <summary>
    /// The adapter <paramref name="name"/> of <paramref name="plan"/>: one layer per targeted base layer (a layer shared
    /// by two paths, weight tying, gets one adapter placed at both), not yet in the model.
    /// </summary>
    /// <exception cref="LoraConfigException">The plan has no target (<see cref="InjectionPlan.NoTargets"/>), or a layer refuses the rank.</exception>
    /// <exception cref="AdapterInjectionException">A targeted layer cannot carry an adapter; the message names it and how to skip it.</exception>
    /// <exception cref="ConvBackendException">The model has convolutions and this CPU's float32 conv2d input gradient is wrong beyond repair.</exception>
    public static NamedAdapter Build(string name, InjectionPlan plan)
    {
        if (plan.Targets.Count == 0) throw plan.NoTargets();

        // Gradients through any convolution (adapted or frozen) reach the adapters: rule out the known
        // float32 conv2d backward fault first, while the model is still untouched (docs/known-issues.md).
        if (plan.HasConvolution) ConvBackwardGuard.EnsureCorrect();

        var layers = new Dictionary<string, LoraLayer>(StringComparer.Ordinal);
        var bases = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        var byInstance = new Dictionary<nn.Module, LoraLayer>(ReferenceEqualityComparer.Instance);
        try
        {
            foreach (var (path, module) in plan.Targets)
            {
                if (!byInstance.TryGetValue(module, out var layer))
                    byInstance[module] = layer = Create(path, module, plan.Config);
                layers[path] = layer;
                bases[path] = module;
            }
        }
        catch
        {
            foreach (var layer in byInstance.Values) layer.Dispose();
            throw;
        }
        var report = new InjectionReport(
            layers.Select(kv => new AdaptedModule(kv.Key, kv.Value.BaseLayer.GetType().Name, kv.Value.Weight.shape,
                kv.Value.AdapterParameters().Sum(p => p.Parameter.numel()))).ToList(),
            plan.Excluded.Select(e => e.Path).ToList(),
            plan.UnmatchedTargets);
        return new NamedAdapter(name, plan.Config, layers, bases, plan.ModulesToSave, report);
    }

    /// <summary>The adapter for one targeted layer; a refusal names the module and how to skip it.</summary>
    private static LoraLayer Create(string path, nn.Module module, LoraConfig config)
    {
        try
        {
            return LoraLayerFactory.Create(module, config);
        }
        catch (AdapterInjectionException e)
        {
            throw new AdapterInjectionException(
                $"Module '{path}': {e.Message} To adapt the other modules, leave it out with LoraConfig.{nameof(LoraConfig.ExcludeModules)}.");
        }
    }
}
