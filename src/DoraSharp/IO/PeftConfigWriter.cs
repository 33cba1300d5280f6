namespace DoraSharp.IO;

/// <summary>
/// Produces the text of <c>adapter_config.json</c> as PEFT's <c>PeftModel.save_pretrained</c> writes it: every
/// field of <c>dataclasses.asdict(LoraConfig)</c> except <c>runtime_config</c> (which <c>LoraConfig.to_dict</c>
/// drops), sets turned into lists, dumped with <c>json.dumps(indent=2, sort_keys=True)</c>.
/// </summary>
internal static class PeftConfigWriter
{
    /// <summary>The file's text for <paramref name="config"/>.</summary>
    public static string Write(PeftAdapterConfig config)
    {
        var fields = Defaults();
        fields["peft_type"] = config.PeftType;
        LoraConfig lora = config.Lora;
        fields["r"] = lora.R;
        fields["lora_alpha"] = IntegralOrFloat(lora.LoraAlpha);
        fields["lora_dropout"] = lora.LoraDropout;
        fields["target_modules"] = lora.TargetModulesRegex ?? (object?)lora.TargetModules?.Cast<object?>().ToList();
        fields["exclude_modules"] = lora.ExcludeModules?.Cast<object?>().ToList();
        fields["modules_to_save"] = lora.ModulesToSave?.Cast<object?>().ToList();
        fields["use_dora"] = lora.UseDora;
        fields["use_rslora"] = lora.UseRsLora;
        fields["init_lora_weights"] = config.InitLoraWeights;
        fields["inference_mode"] = config.InferenceMode;
        fields["task_type"] = config.TaskType;
        fields["base_model_name_or_path"] = config.BaseModelNameOrPath;
        fields["revision"] = config.Revision;
        fields["peft_version"] = config.PeftVersion;
        fields["auto_mapping"] = config.AutoMapping is { } mapping
            ? new Dictionary<string, object?>
            {
                ["base_model_class"] = mapping.BaseModelClass,
                ["parent_library"] = mapping.ParentLibrary,
            }
            : null;
        return PythonJson.Dumps(fields);
    }

    /// <summary>
    /// PEFT's <c>LoraConfig</c> defaults for the fields DoraSharp does not model, as <c>save_pretrained</c> writes
    /// them (PEFT 0.20.1.dev0, commit 5d602fd; the golden fixture's adapter_config.json was written by it).
    /// The default factories <c>dict</c> give <c>{}</c>; <c>loftq_config</c> defaults to an empty dict too.
    /// </summary>
    private static Dictionary<string, object?> Defaults() => new(StringComparer.Ordinal)
    {
        ["alora_invocation_tokens"] = null,
        ["alpha_pattern"] = EmptyObject,
        ["arrow_config"] = null,
        ["bias"] = "none",
        ["corda_config"] = null,
        ["ensure_weight_tying"] = false,
        ["eva_config"] = null,
        ["fan_in_fan_out"] = false,
        ["kasa_config"] = null,
        ["layer_replication"] = null,
        ["layers_pattern"] = null,
        ["layers_to_transform"] = null,
        ["loftq_config"] = EmptyObject,
        ["lora_bias"] = false,
        ["lora_ga_config"] = null,
        ["megatron_config"] = null,
        ["megatron_core"] = "megatron.core",
        ["modules_to_save"] = null,
        ["monteclora_config"] = null,
        ["qalora_group_size"] = 16,
        ["rank_pattern"] = EmptyObject,
        ["target_parameters"] = null,
        ["trainable_token_indices"] = null,
        ["use_bdlora"] = null,
        ["use_qalora"] = false,
        ["velora_config"] = null,
    };

    private static readonly IReadOnlyDictionary<string, object?> EmptyObject = new Dictionary<string, object?>();

    /// <summary>
    /// PEFT types <c>lora_alpha</c> as int and users pass ints, which json writes without ".0"; a fractional
    /// alpha is written as a float. Whole values beyond 2^53 stay floats so the text reads back to the same double.
    /// </summary>
    private static object IntegralOrFloat(double value) =>
        Math.Abs(value) <= 9007199254740992d && value == Math.Floor(value) ? (object)(long)value : value;
}
