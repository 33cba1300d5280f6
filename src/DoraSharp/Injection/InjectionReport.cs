using System.Text;

namespace DoraSharp;

/// <summary>One adapted module.</summary>
/// <param name="Path">Dotted module path, e.g. "layers.0".</param>
/// <param name="LayerType">The base layer's type name, e.g. "Linear".</param>
/// <param name="WeightShape">The base weight's shape.</param>
/// <param name="AdapterParameters">Trainable parameters this adapter adds.</param>
public sealed record AdaptedModule(string Path, string LayerType, long[] WeightShape, long AdapterParameters);

/// <summary>What <see cref="LoraModel.Wrap"/> did: which modules got adapters and which were passed over.</summary>
/// <param name="Adapted">Modules that now carry an adapter.</param>
/// <param name="Excluded">Modules matched by the targets but named in ExcludeModules.</param>
/// <param name="UnmatchedTargets">TargetModules entries that matched no module (PEFT accepts these too).</param>
public sealed record InjectionReport(
    IReadOnlyList<AdaptedModule> Adapted,
    IReadOnlyList<string> Excluded,
    IReadOnlyList<string> UnmatchedTargets)
{
    /// <summary>A few lines for a console: one per adapted module, then what was passed over.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        foreach (var a in Adapted)
            sb.AppendLine($"adapted {a.Path} ({a.LayerType} [{string.Join(", ", a.WeightShape)}]): +{a.AdapterParameters:N0} trainable");
        foreach (var e in Excluded) sb.AppendLine($"excluded {e}");
        foreach (var u in UnmatchedTargets) sb.AppendLine($"target '{u}' matched no module");
        return sb.ToString().TrimEnd();
    }
}

/// <summary>Parameter counts in PEFT's <c>print_trainable_parameters</c> sense.</summary>
/// <param name="Trainable">Parameters with requires_grad.</param>
/// <param name="Total">All parameters of the model, adapters included.</param>
public sealed record ParameterCount(long Trainable, long Total)
{
    /// <summary>Trainable share in percent.</summary>
    public double TrainablePercent => Total == 0 ? 0 : 100.0 * Trainable / Total;

    /// <summary>PEFT's line: "trainable params: X || all params: Y || trainable%: Z".</summary>
    public override string ToString()
        => FormattableString.Invariant($"trainable params: {Trainable:N0} || all params: {Total:N0} || trainable%: {TrainablePercent:0.0000}");
}
