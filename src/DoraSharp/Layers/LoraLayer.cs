using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>
/// What every LoRA adapter layer shares: the frozen base parameters (registered under the base layer's own names,
/// <c>weight</c> and <c>bias</c>, so a base checkpoint still loads into the wrapped model), the trainable factors,
/// the LoRA dropout and the enable/merge state. Subclasses supply the layer-specific LoRA math. A variant such as
/// DoRA (<see cref="LoraConfig.UseDora"/>) is not computed here: the layer delegates its init, merge, unmerge and
/// forward to the variant <see cref="LoraVariants.For"/> chose (PEFT's <c>LoraVariant</c> seam), which also owns the
/// variant's parameters (DoRA's <c>lora_magnitude_vector</c>).
/// </summary>
public abstract class LoraLayer : nn.Module<Tensor, Tensor>
{
    /// <summary>State-dict name of the DoRA magnitude, as in PEFT's files.</summary>
    public const string MagnitudeName = DoraVariant.MagnitudeName;

    private readonly bool _hasBias;
    private Dropout? _dropout;
    private Tensor? _unmergeState; // what the variant recorded at merge time (DoRA: n), to undo the merge exactly as PEFT does

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

    /// <summary>The variant this layer delegates to (DoRA), or null for plain LoRA; set by <see cref="InitVariant"/>.</summary>
    internal LoraVariant? Variant { get; private set; }

    /// <summary>When false the layer returns the base output exactly.</summary>
    public bool AdapterEnabled { get; set; } = true;

    /// <summary>True while the adapter is folded into <see cref="Weight"/>.</summary>
    public bool IsMerged { get; private set; }

    /// <summary>
    /// Selects the straightforward PEFT-equivalent DoRA computation instead of the default fast path
    /// (kept for checking; both pass the golden tests). Set it for second-order gradients (<c>create_graph</c>):
    /// the fast Linear path's hand-written backward is not differentiable itself. No effect on plain LoRA.
    /// </summary>
    public bool UseReferenceDora { get; set; }

    /// <summary>The frozen base weight (looked up each time: <c>.to()</c> replaces parameter objects).</summary>
    public Parameter Weight => get_parameter("weight")!;

    /// <summary>The frozen base bias, or null.</summary>
    public Parameter? Bias => _hasBias ? get_parameter("bias") : null;

    /// <summary>The DoRA magnitude m, or null for plain LoRA.</summary>
    public Parameter? Magnitude => Variant is DoraVariant ? DoraVariant.Magnitude(this) : null;

    /// <summary>The low-rank factor A as a tensor of PEFT's <c>lora_A.weight</c> shape.</summary>
    public abstract Parameter LoraA { get; }

    /// <summary>The low-rank factor B as a tensor of PEFT's <c>lora_B.weight</c> shape.</summary>
    public abstract Parameter LoraB { get; }

    /// <summary>The trainable parameters of this adapter with their local names (lora_A.weight, ...).</summary>
    public IEnumerable<(string Name, Parameter Parameter)> AdapterParameters()
        => named_parameters().Where(p => p.name != "weight" && p.name != "bias");

    /// <summary>The scaled update ΔW = s·B·A in the base weight's layout and dtype.</summary>
    public abstract Tensor DeltaWeight();

    /// <summary>Drops the variant's cached eval-mode values (DoRA's row norm).</summary>
    public void InvalidateCache() => Variant?.InvalidateCache();

    /// <summary>
    /// Attaches the variant <see cref="LoraVariants.For"/> chooses and lets it create its parameters: called by each
    /// layer's constructor after its factors and dropout, so the variant's parameters follow them in the state dict.
    /// </summary>
    protected void InitVariant()
    {
        Variant = LoraVariants.For(this);
        Variant?.Init(this);
    }

    /// <summary>Registers a variant's parameter (DoRA's magnitude) on this layer, under PEFT's name.</summary>
    internal void RegisterVariantParameter(string name, Parameter parameter) => register_parameter(name, parameter);

    /// <summary>
    /// Adds PEFT's <c>lora_dropout</c> (on the adapter's input only) when <paramref name="p"/> &gt; 0. Linear and
    /// Conv2d; an Embedding has none (PEFT's <c>Embedding.forward</c> never calls its dropout).
    /// </summary>
    protected void AddDropout(double p)
    {
        if (p <= 0) return;
        _dropout = nn.Dropout(p);
        register_module("lora_dropout", _dropout);
    }

    /// <summary>Replaces dropout by a fixed function (tests reproduce PEFT's dropout with a recorded mask).</summary>
    internal Func<Tensor, Tensor>? DropoutOverride { get; set; }

    /// <summary>True when this forward applies dropout to the adapter's input (training, with a dropout).</summary>
    internal bool DropoutActive => training && (DropoutOverride is not null || _dropout is not null);

    /// <summary>x~: the dropout applied to the adapter input <paramref name="xa"/> (only when <see cref="DropoutActive"/>).</summary>
    internal Tensor ApplyDropout(Tensor xa) => DropoutOverride?.Invoke(xa) ?? _dropout!.call(xa);

    /// <summary>The input in the adapter's dtype (float32 for a float16/bfloat16 base), converted only when it differs.</summary>
    internal Tensor AdapterInput(Tensor x) => x.dtype == LoraA.dtype ? x : x.to(LoraA.dtype);

    /// <summary>Converts <paramref name="t"/> only when its dtype differs: each <c>.to()</c> is a native call even when it changes nothing.</summary>
    internal static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    /// <summary>
    /// Sets the DoRA magnitude to ‖W + s·B·A‖ for the current W, A and B — DoRA's initialisation, as PEFT's
    /// <c>update_layer</c> computes it — e.g. after assigning A and B by hand.
    /// </summary>
    public void ResetMagnitude()
    {
        if (Variant is not DoraVariant dora) throw new InvalidOperationException($"Adapter '{GetName()}' is LoRA, not DoRA: it has no magnitude.");
        if (IsMerged) throw new InvalidOperationException($"Adapter '{GetName()}' is merged; unmerge it first.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        dora.ResetMagnitude(this);
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

    /// <summary>The merged weight and what the variant needs to undo the merge (PEFT's merge with safe_merge=True).</summary>
    private (Tensor Merged, Tensor? UnmergeState) ComputeMerged()
    {
        using var noGrad = no_grad();
        var weight = Weight;
        var delta = DeltaWeight();
        return Variant is null ? (weight.add(delta), null) : Variant.MergedWeight(this, weight, delta);
    }

    /// <summary>Folds the adapter into the base weight (PEFT's <c>merge(safe_merge=True)</c>).</summary>
    /// <exception cref="InvalidOperationException">Already merged, or the merge produced non-finite values.</exception>
    public void Merge()
    {
        if (IsMerged) throw new InvalidOperationException($"Adapter '{GetName()}' is already merged.");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var (merged, state) = ComputeMerged();
        if (!merged.isfinite().all().item<bool>())
            throw new InvalidOperationException($"Merging adapter '{GetName()}' produced NaN or Inf; the weight was left unmerged.");
        Weight.copy_(merged);
        if (state is not null)
        {
            _unmergeState?.Dispose();
            _unmergeState = state.detach().MoveToOuterDisposeScope();
            _unmergeState.DetachFromDisposeScope();
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
        if (Variant is not null)
        {
            weight.copy_(Variant.UnmergedWeight(this, weight, delta, _unmergeState));
            _unmergeState?.Dispose();
            _unmergeState = null;
        }
        else
        {
            weight.sub_(delta);
        }
        IsMerged = false;
        OnWeightChanged();
    }

    /// <summary>Called after the base weight changed in place (merge, unmerge, load): drop caches.</summary>
    protected virtual void OnWeightChanged() => Variant?.InvalidateCache();

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
            Variant?.Dispose();
            _unmergeState?.Dispose();
            _unmergeState = null;
            var table = TorchSharpInternals.ParameterTable(this);
            // TorchSharp's Module.Dispose reaches a module once per ancestor, so this runs more than once inside
            // a nested model; OrderedDict.Remove throws for a missing key.
            foreach (var shared in new[] { "weight", "bias" })
                if (table.ContainsKey(shared)) table.Remove(shared);
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
        var table = TorchSharpInternals.ParameterTable(this);
        if (!ReferenceEquals(table["weight"], weight)) table["weight"] = weight;
        if (_hasBias && bias is not null && !ReferenceEquals(table["bias"], bias)) table["bias"] = bias;
        OnWeightChanged();
    }

    /// <summary>
    /// Makes <paramref name="module"/> hold <paramref name="value"/> as its parameter <paramref name="name"/>, when it holds
    /// another object: the base layer of an adapter is out of the model, so <c>.to()</c> replaced (and disposed) the
    /// parameters only in this wrapper (<see cref="TorchSharpInternals.RebindParameter"/>).
    /// </summary>
    protected static void RebindParameter(nn.Module module, string name, Parameter value)
        => TorchSharpInternals.RebindParameter(module, name, value);

    /// <summary>Creates a parameter that outlives any dispose scope open at construction time.</summary>
    protected internal static Parameter NewParameter(Tensor data, bool requiresGrad)
    {
        var p = new Parameter(data, requires_grad: requiresGrad);
        p.DetachFromDisposeScope();
        return p;
    }
}
