namespace DoraSharp.IO;

/// <summary>Which adapter tensor a key of <c>adapter_model.safetensors</c> holds.</summary>
internal enum AdapterTensorKind
{
    /// <summary><c>lora_A.weight</c>: (r, in) for a Linear.</summary>
    LoraA,

    /// <summary><c>lora_B.weight</c>: (out, r) for a Linear.</summary>
    LoraB,

    /// <summary><c>lora_magnitude_vector</c>: the DoRA magnitude, (out) for a Linear.</summary>
    Magnitude,
}

/// <summary>
/// The tensor keys of PEFT's <c>adapter_model.safetensors</c>: <c>base_model.model.&lt;module path&gt;.lora_A.weight</c>,
/// <c>….lora_B.weight</c> and, for DoRA, <c>….lora_magnitude_vector</c>.
/// </summary>
/// <remarks>
/// The prefix is the path of the user's model inside a <c>PeftModel</c> (<c>PeftModel.base_model</c> is the
/// <c>LoraModel</c> tuner, whose <c>model</c> is the user's model). PEFT's <c>get_peft_model_state_dict</c> removes
/// the adapter name (<c>lora_A.default.weight</c> → <c>lora_A.weight</c>) and, for DoRA, the ".weight" of
/// <c>lora_magnitude_vector.default.weight</c>, a leftover of a refactor it keeps the format stable across.
/// DoraSharp's own state-dict names are these keys without the prefix.
/// </remarks>
internal static class AdapterKeys
{
    /// <summary>The prefix of every key PEFT's <c>PeftModel.save_pretrained</c> writes.</summary>
    public const string Prefix = "base_model.model.";

    private const string LoraASuffix = ".lora_A.weight";
    private const string LoraBSuffix = ".lora_B.weight";
    private const string MagnitudeSuffix = "." + LoraLayer.MagnitudeName;

    /// <summary>The file key of <paramref name="kind"/> for the module at <paramref name="modulePath"/>.</summary>
    public static string For(string modulePath, AdapterTensorKind kind) => Prefix + modulePath + kind switch
    {
        AdapterTensorKind.LoraA => LoraASuffix,
        AdapterTensorKind.LoraB => LoraBSuffix,
        _ => MagnitudeSuffix,
    };

    /// <summary>
    /// Splits a file key into module path and tensor kind; false when it is not a LoRA tensor key with PEFT's
    /// prefix (such as a saved bias or a modules_to_save weight).
    /// </summary>
    public static bool TryParse(string key, out string modulePath, out AdapterTensorKind kind)
    {
        modulePath = "";
        kind = default;
        if (!key.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        string rest = key[Prefix.Length..];
        foreach ((string suffix, AdapterTensorKind k) in new[] { (LoraASuffix, AdapterTensorKind.LoraA), (LoraBSuffix, AdapterTensorKind.LoraB), (MagnitudeSuffix, AdapterTensorKind.Magnitude) })
        {
            if (rest.Length > suffix.Length && rest.EndsWith(suffix, StringComparison.Ordinal))
            {
                modulePath = rest[..^suffix.Length];
                kind = k;
                return true;
            }
        }
        return false;
    }
}
