using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// What every LoRA/DoRA adapter layer shares: the frozen base parameters (registered under the base
/// layer's own names, <c>weight</c> and <c>bias</c>, so a base checkpoint still loads into the wrapped
/// model), the trainable factors and, for DoRA, the magnitude <c>lora_magnitude_vector</c>, plus the
/// enable/merge state. Subclasses supply the layer-specific math.
/// </summary>
public abstract class LoraLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>State-dict name of the DoRA magnitude, as in PEFT's files.</summary>
    public const string MagnitudeName = "lora_magnitude_vector";

    private readonly bool _hasBias;
    private readonly DoraNormCache _normCache = new();
    private Tensor? _mergedNorm; // n recorded at merge time (DoRA), to undo the merge exactly as PEFT does

    /// <summary>Registers the base layer's parameters on this wrapper, frozen.</summary>
    protected LoraLayer(string name, nn.Module baseLayer, Parameter weight, Parameter? bias, LoraConfig config)
        : base(name)
    {
        config.Validate();
        CheckAdapterSize(name, weight, config.R);
        BaseLayer = baseLayer;
        Config = config;
        Scaling = config.Scaling;
        weight.requires_grad = false;
        register_parameter("weight", weight);
        if (bias is not null)
        {
            bias.requires_grad = false;
            register_parameter("bias", bias);
            _hasBias = true;
        }
    }

    /// <summary>
    /// The most values (A and B together) one adapter may hold: 2^31, 8 GiB in float32. No useful rank comes near it —
    /// a full-rank update of a 16384 × 53248 layer (Llama 3 405B's MLP) at r = 16384 holds 1.1e9 — so a larger
    /// request is a mistake, refused before libtorch is asked for the memory (whose failure is an undocumented
    /// ExternalException, or on a host that overcommits, the process killed while the factors are initialised).
    /// </summary>
    public const long MaxAdapterValues = 1L << 31;

    private static void CheckAdapterSize(string layer, Parameter weight, int r)
    {
        // A and B hold r·(in + out) values for a Linear, r·(in·kh·kw + out) for a Conv2d, r·(num + dim) for an Embedding:
        // r times (the weight's values per row + its rows), whichever axis comes first.
        long rows = weight.shape.Length > 0 ? weight.shape[0] : 1;
        long perRank = (rows == 0 ? 0 : weight.numel() / rows) + rows;
        if (perRank > 0 && r > MaxAdapterValues / perRank)
        {
            throw new LoraConfigException(nameof(LoraConfig.R), r,
                $"the {layer} adapter of a weight of shape [{string.Join(", ", weight.shape)}] would hold r × {perRank} = {(double)r * perRank:0.###e0} values, " +
                $"more than the {MaxAdapterValues} (8 GiB in float32) DoraSharp allows; a full-rank update needs r = {System.Math.Min(rows, perRank - rows)}");
        }
    }

    /// <summary>
    /// Does nothing: this layer registers its parameters and children by hand under PEFT's names. TorchSharp
    /// calls RegisterComponents lazily and would otherwise register every field — the wrapped base layer
    /// included, which would add its weight a second time to the state dict.
    /// </summary>
    protected override void RegisterComponents() { }

    /// <summary>The module this adapter wraps (returned by <see cref="Unload"/>).</summary>
    public nn.Module BaseLayer { get; }

    /// <summary>The options the adapter was built from.</summary>
    public LoraConfig Config { get; }

    /// <summary>The scaling s of s·B·A.</summary>
    public double Scaling { get; }

    /// <summary>True when this is a DoRA adapter (it has a magnitude).</summary>
    public bool UseDora => Config.UseDora;

    /// <summary>When false the layer returns the base output exactly.</summary>
    public bool AdapterEnabled { get; set; } = true;

    /// <summary>True while the adapter is folded into <see cref="Weight"/>.</summary>
    public bool IsMerged { get; private set; }

    /// <summary>
    /// Selects the straightforward PEFT-equivalent DoRA computation instead of the default fast path
    /// (kept for checking; both pass the golden tests). Set it for second-order gradients (<c>create_graph</c>):
    /// the fast Linear path's hand-written backward is not differentiable itself.
    /// </summary>
    public bool UseReferenceDora { get; set; }

    /// <summary>The frozen base weight (looked up each time: <c>.to()</c> replaces parameter objects).</summary>
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>The frozen base bias, or null.</summary>
    public Parameter? Bias => _hasBias ? get_parameter("bias") : null;

    /// <summary>The DoRA magnitude m, or null for plain LoRA.</summary>
    public Parameter? Magnitude => UseDora ? get_parameter(MagnitudeName) : null;

    /// <summary>The low-rank factor A as a tensor of PEFT's <c>lora_A.weight</c> shape.</summary>
    public abstract Parameter LoraA { get; }

    /// <summary>The low-rank factor B as a tensor of PEFT's <c>lora_B.weight</c> shape.</summary>
    public abstract Parameter LoraB { get; }

    /// <summary>The trainable parameters of this adapter with their local names (lora_A.weight, ...).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> AdapterParameters()
        => named_parameters().Where(p => p.name != "weight" && p.name != "bias");

    /// <summary>The scaled update ΔW = s·B·A in the base weight's layout and dtype.</summary>
    public abstract Tensor DeltaWeight();

    /// <summary>Row norms n = ‖W + ΔW‖ over every axis but the DoRA magnitude's, in float32 or wider.</summary>
    protected abstract Tensor DirectionNorm(Tensor weight, Tensor deltaWeight);

    /// <summary>
    /// The detached norm n = ‖W + s·B·A‖ (one value per magnitude entry, flat) computed as PEFT's
    /// <c>get_weight_norm</c> does, materialising B·A.
    /// </summary>
    internal abstract Tensor ReferenceNorm();

    /// <summary>The same norm as <see cref="ReferenceNorm"/> without materialising B·A (<see cref="DoraSharp.FactoredNorm"/>).</summary>
    internal abstract Tensor FactoredDirectionNorm();

    /// <summary>
    /// The detached DoRA norm for a forward pass: PEFT's literal computation when <see cref="UseReferenceDora"/>
    /// is set, else the factored one, kept between eval-mode calls while W, A and B are unchanged.
    /// </summary>
    protected Tensor ForwardNorm() => UseReferenceDora ? ReferenceNorm() : _normCache.Get(this, training);

    /// <summary>Drops the cached eval-mode DoRA norm.</summary>
    public void InvalidateCache() => _normCache.Invalidate();

    /// <summary>The base weight reshaped/broadcast factor for m / n, in the weight's layout.</summary>
    protected abstract Tensor WeightScaleView(Tensor scale);

    /// <summary>
    /// ‖W + s·B·A‖ for the magnitude's initialisation, flat: by default through the materialised ΔW, as PEFT's
    /// <c>update_layer</c>; a layer whose factored norm avoids the (out, in) temporaries overrides it.
    /// </summary>
    protected virtual Tensor InitialNorm() => DirectionNorm(Weight, DeltaWeight());

    /// <summary>
    /// Creates the DoRA magnitude, initialised to the norm of W + s·B·A (PEFT's
    /// <c>DoraLinearLayer.update_layer</c>), so that at initialisation the DoRA layer equals the base layer.
    /// </summary>
    protected void InitMagnitude(long[] shape)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var norm = InitialNorm().reshape(shape);
        var magnitude = NewParameter(norm.detach().clone().MoveToOuterDisposeScope(), requiresGrad: true);
        register_parameter(MagnitudeName, magnitude);
    }

    /// <summary>
    /// Sets the DoRA magnitude to ‖W + s·B·A‖ for the current W, A and B — DoRA's initialisation, as PEFT's
    /// <c>update_layer</c> computes it — e.g. after assigning A and B by hand.
    /// </summary>
    public void ResetMagnitude()
    {
        if (!UseDora) throw new InvalidOperationException($"Adapter '{GetName()}' is LoRA, not DoRA: it has no magnitude.");
        if (IsMerged) throw new InvalidOperationException($"Adapter '{GetName()}' is merged; unmerge it first.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var m = Magnitude!;
        m.copy_(InitialNorm().reshape(m.shape));
        OnWeightChanged();
    }

    /// <summary>
    /// The weight this layer currently applies, in the base weight's layout and dtype, without changing
    /// anything: W + s·B·A for LoRA, m·(W + s·B·A)/‖W + s·B·A‖ for DoRA (the weight <see cref="Merge"/>
    /// would write). Used by the magnitude/direction analysis.
    /// </summary>
    public Tensor EffectiveWeight()
    {
        if (IsMerged || !AdapterEnabled) return Weight.detach().clone();
        using var scope = NewDisposeScope();
        var (weight, _) = ComputeMerged();
        return scope.MoveToOuter(weight);
    }

    /// <summary>The merged weight and, for DoRA, the norm n it used (PEFT's merge with safe_merge=True).</summary>
    private (Tensor Merged, Tensor? Norm) ComputeMerged()
    {
        using var noGrad = no_grad();
        var weight = Weight;
        var delta = DeltaWeight();
        if (!UseDora) return (weight.add(delta), null);
        var dtype = DoraMath.NormDType(weight.dtype);
        var v = weight.to(dtype).add(delta.to(dtype));
        var norm = DirectionNorm(weight, delta);
        var scale = DoraMath.MagnitudeScale(Magnitude!.detach().reshape(-1).to(dtype), norm);
        return (v.mul_(WeightScaleView(scale)).to(weight.dtype), norm);
    }

    /// <summary>Folds the adapter into the base weight (PEFT's <c>merge(safe_merge=True)</c>).</summary>
    /// <exception cref="InvalidOperationException">Already merged, or the merge produced non-finite values.</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException($"Adapter '{GetName()}' is already merged.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (merged, norm) = ComputeMerged();
        if (!merged.isfinite().all().item<bool>())
            throw new InvalidOperationException($"Merging adapter '{GetName()}' produced NaN or Inf; the weight was left unmerged.");
        Weight.copy_(merged);
        if (norm is not null)
        {
            _mergedNorm?.Dispose();
            _mergedNorm = norm.detach().MoveToOuterDisposeScope();
            _mergedNorm.DetachFromDisposeScope();
        }
        IsMerged = true;
        OnWeightChanged();
    }

    /// <summary>Restores the base weight from a merged one (PEFT's <c>unmerge</c>).</summary>
    public void Unmerge()
    {
        if (!IsMerged) throw new InvalidOperationException($"Adapter '{GetName()}' is not merged.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var weight = Weight;
        var delta = DeltaWeight();
        if (UseDora)
        {
            var dtype = DoraMath.NormDType(weight.dtype);
            var scale = DoraMath.MagnitudeScale(Magnitude!.reshape(-1).to(dtype), _mergedNorm!);
            var restored = weight.to(dtype).div(WeightScaleView(scale)).sub_(delta.to(dtype)).to(weight.dtype);
            // A row whose magnitude is 0 was merged to zeros: its base row cannot be recovered by division.
            if (!restored.isfinite().all().item<bool>())
                throw new InvalidOperationException(
                    $"Cannot unmerge adapter '{GetName()}': a row has magnitude 0, so the merge erased its base weight. Reload the base weights instead.");
            weight.copy_(restored);
            _mergedNorm!.Dispose();
            _mergedNorm = null;
        }
        else
        {
            weight.sub_(delta);
        }
        IsMerged = false;
        OnWeightChanged();
    }

    /// <summary>Called after the base weight changed in place (merge, unmerge, load): drop caches.</summary>
    protected virtual void OnWeightChanged() => _normCache.Invalidate();

    /// <summary>
    /// Returns the base layer with this adapter's current weight (merged or not) and bias; the adapter
    /// parameters are not part of it.
    /// </summary>
    public abstract nn.Module<Tensor, Tensor> Unload();

    /// <summary>
    /// Disposes the adapter's own tensors but not the base weight and bias: they belong to the base layer,
    /// which lives on after an unload or a refused injection. TorchSharp's Module.Dispose frees every
    /// registered parameter, so the shared ones are unregistered first.
    /// </summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _normCache.Invalidate();
            _mergedNorm?.Dispose();
            _mergedNorm = null;
            var table = ParameterTable();
            // TorchSharp's Module.Dispose reaches a module once per ancestor, so this runs more than once inside
            // a nested model; OrderedDict.Remove throws for a missing key.
            foreach (var shared in new[] { "weight", "bias" })
                if (table is not null && table.ContainsKey(shared)) table.Remove(shared);
        }
        base.Dispose(disposing);
    }

    /// <summary>
    /// Makes this layer compute with <paramref name="weight"/> and <paramref name="bias"/> as its base parameters when
    /// they are other objects than its own: the layers of several named adapters share one base layer, and
    /// <c>.to()</c> replaces parameter objects only in the layers that are in the model at the time.
    /// </summary>
    internal void AdoptBase(Parameter weight, Parameter? bias)
    {
        var table = ParameterTable() ?? throw new InvalidOperationException("This TorchSharp version does not expose a module's parameter table.");
        if (!ReferenceEquals(table["weight"], weight)) table["weight"] = weight;
        if (_hasBias && bias is not null && !ReferenceEquals(table["bias"], bias)) table["bias"] = bias;
        OnWeightChanged();
    }

    /// <summary>
    /// Makes <paramref name="module"/> hold <paramref name="value"/> as its parameter <paramref name="name"/>, when it holds
    /// another object: the base layer of an adapter is out of the model, so <c>.to()</c> replaced (and disposed) the
    /// parameters only in this wrapper. TorchSharp's setters (Linear.weight …) touch the old, disposed tensor and
    /// throw, so the registered entry and the field behind the property are rebound directly, as <c>.to()</c> does.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075",
        Justification = "The fields of TorchSharp's Linear, Embedding or Conv2d that hold their parameters, which TorchSharp's own .to() rebinds the same way.")]
    protected static void RebindParameter(nn.Module module, string name, Parameter value)
    {
        const System.Reflection.BindingFlags Flags = System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic;
        var old = module.get_parameter(name);
        if (ReferenceEquals(old, value)) return;
        var table = typeof(nn.Module).GetField("_internal_params", Flags)?.GetValue(module) as TorchSharp.Utils.OrderedDict<string, Parameter>
                    ?? throw new InvalidOperationException("This TorchSharp version does not expose a module's parameter table.");
        table[name] = value;
        for (var t = module.GetType(); t is not null && t != typeof(nn.Module); t = t.BaseType)
            foreach (var field in t.GetFields(Flags | System.Reflection.BindingFlags.DeclaredOnly))
                if (typeof(Tensor).IsAssignableFrom(field.FieldType) && ReferenceEquals(field.GetValue(module), old))
                    field.SetValue(module, value);
    }

    // TorchSharp keeps a module's parameters in a private table; register_parameter refuses a name already in it.
    private TorchSharp.Utils.OrderedDict<string, Parameter>? ParameterTable()
        => typeof(nn.Module).GetField("_internal_params", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)
            ?.GetValue(this) as TorchSharp.Utils.OrderedDict<string, Parameter>;

    /// <summary>Creates a parameter that outlives any dispose scope open at construction time.</summary>
    protected static Parameter NewParameter(Tensor data, bool requiresGrad)
    {
        var p = new Parameter(data, requires_grad: requiresGrad);
        p.DetachFromDisposeScope();
        return p;
    }
}
