using System.Text.RegularExpressions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.IO;

/// <summary>One module that carries, or is about to carry, an adapter, with the sizes its tensors depend on.</summary>
/// <param name="Path">Dotted module path, e.g. "layers.0".</param>
/// <param name="Layer">The module instance; two paths holding one instance (weight tying) share one adapter.</param>
/// <param name="Kind">The base layer's type name, for messages ("Linear").</param>
/// <param name="InFeatures">The base layer's input features.</param>
/// <param name="OutFeatures">The base layer's output features.</param>
internal sealed record AdapterSlot(string Path, object Layer, string Kind, long InFeatures, long OutFeatures);

/// <summary>
/// What a model expects of an adapter file: which modules get an adapter, of which rank, with or without a DoRA
/// magnitude, and so which tensor keys and shapes. Computed without touching the model, so a load can check a file
/// completely before it changes anything.
/// </summary>
internal sealed class AdapterLayout
{
    private AdapterLayout(IReadOnlyList<AdapterSlot> slots, int r, bool useDora, IReadOnlyDictionary<string, nn.Module> modules)
    {
        Slots = slots;
        R = r;
        UseDora = useDora;
        Modules = modules;
    }

    /// <summary>The modules that carry an adapter, in model order.</summary>
    public IReadOnlyList<AdapterSlot> Slots { get; }

    /// <summary>The rank of every adapter.</summary>
    public int R { get; }

    /// <summary>True when every adapter has a DoRA magnitude.</summary>
    public bool UseDora { get; }

    /// <summary>Every module of the model by path, to explain keys that name no adapted module.</summary>
    public IReadOnlyDictionary<string, nn.Module> Modules { get; }

    /// <summary>The tensor kinds each adapter has.</summary>
    public IEnumerable<AdapterTensorKind> Kinds => UseDora
        ? [AdapterTensorKind.LoraA, AdapterTensorKind.LoraB, AdapterTensorKind.Magnitude]
        : [AdapterTensorKind.LoraA, AdapterTensorKind.LoraB];

    /// <summary>
    /// The modules <see cref="LoraModel.Wrap"/> would adapt in <paramref name="model"/> for <paramref name="config"/>
    /// (same matcher, same rules), found without changing the model.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model already has adapters.</exception>
    /// <exception cref="AdapterMismatchException">The targets select no supported module of the model.</exception>
    /// <exception cref="AdapterFormatException">The target regular expression runs too long on a module path.</exception>
    public static AdapterLayout ForModel(nn.Module model, LoraConfig config, string configPath)
    {
        var all = ModuleSurgery.Descendants(model);
        var wrapped = all.FirstOrDefault(m => m.Module is LoraLayer);
        if (model is LoraLayer || wrapped.Module is not null)
        {
            throw new InvalidOperationException(
                $"The model already has an adapter{(wrapped.Module is null ? "" : $" at '{wrapped.Path}'")}. Load the weights into its " +
                "LoraModel with LoadAdapterWeights, or Unload() it first to load a different adapter.");
        }
        var matcher = new TargetMatcher(config);
        var targets = new List<(string Path, nn.Module Module)>();
        var excluded = new List<string>();
        foreach ((string path, nn.Module module) in all)
        {
            bool targeted;
            try
            {
                targeted = matcher.MatchesTarget(path);
            }
            catch (RegexMatchTimeoutException e)
            {
                throw new AdapterFormatException(configPath, $"field \"target_modules\": the regular expression took longer than {e.MatchTimeout.TotalSeconds:0.#} s on module path {DisplayText.Quote(path)}; simplify it", e);
            }
            if (!targeted || !LoraLayerFactory.IsSupported(module)) continue;
            if (matcher.IsExcluded(path)) excluded.Add(path);
            else targets.Add((path, module));
        }
        if (targets.Count == 0)
        {
            var available = all.Where(m => LoraLayerFactory.IsSupported(m.Module)).Select(m => m.Path).ToList();
            string value = config.TargetModules is not null ? $"[{string.Join(", ", config.TargetModules.Take(20).Select(DisplayText.Quote))}]" : DisplayText.Quote(config.TargetModulesRegex!);
            throw new AdapterMismatchException(configPath,
                $"field \"target_modules\" ({value}) selects no {LoraLayerFactory.SupportedTypes} module of the model" +
                (excluded.Count > 0 ? $" that exclude_modules leaves (excluded: {string.Join(", ", excluded.Take(20))})" : "") +
                $": the adapter is for a different model. The model's {LoraLayerFactory.SupportedTypes} modules are: " +
                (available.Count == 0 ? "(none)" : string.Join(", ", available.Take(50)) + (available.Count > 50 ? $" … ({available.Count} in all)" : "")),
                key: "target_modules");
        }
        var slots = targets.Select(t => Slot(t.Path, t.Module)).ToList();
        return new AdapterLayout(slots, config.R, config.UseDora, all.ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal));
    }

    /// <summary>The adapters an existing <see cref="LoraModel"/> has.</summary>
    public static AdapterLayout ForLoraModel(LoraModel lora)
    {
        var slots = lora.Layers.Select(kv => kv.Value is LoraLinear linear
                ? new AdapterSlot(kv.Key, linear, nameof(Linear), linear.InFeatures, linear.OutFeatures)
                : throw new NotSupportedException($"Adapter files hold Linear adapters only; '{kv.Key}' is a {kv.Value.GetType().Name}."))
            .ToList();
        var modules = ModuleSurgery.Descendants(lora.Model).ToDictionary(m => m.Path, m => m.Module, StringComparer.Ordinal);
        return new AdapterLayout(slots, lora.Config.R, lora.Config.UseDora, modules);
    }

    /// <summary>
    /// The shape PEFT gives <paramref name="kind"/> for <paramref name="slot"/>: lora_A.weight (r, in),
    /// lora_B.weight (out, r), lora_magnitude_vector (out) — a Linear's, as <c>nn.Linear(in, r)</c> and
    /// <c>nn.Linear(r, out)</c> store them, and DoRA's one magnitude per output row.
    /// </summary>
    public long[] ExpectedShape(AdapterSlot slot, AdapterTensorKind kind) => kind switch
    {
        AdapterTensorKind.LoraA => [R, slot.InFeatures],
        AdapterTensorKind.LoraB => [slot.OutFeatures, R],
        _ => [slot.OutFeatures],
    };

    /// <summary>The axis of <paramref name="kind"/>'s shape that has length r, or -1.</summary>
    public static int RankAxis(AdapterTensorKind kind) => kind switch
    {
        AdapterTensorKind.LoraA => 0,
        AdapterTensorKind.LoraB => 1,
        _ => -1,
    };

    private static AdapterSlot Slot(string path, nn.Module module) => module switch
    {
        Linear linear => new AdapterSlot(path, linear, nameof(Linear), linear.in_features, linear.out_features),
        _ => throw new NotSupportedException($"Adapter files hold Linear adapters only; '{path}' is a {module.GetType().Name}."),
    };
}
