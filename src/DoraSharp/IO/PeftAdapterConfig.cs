namespace DoraSharp.IO;

/// <summary>
/// The fields of PEFT's <c>adapter_config.json</c> for a LoRA/DoRA adapter that DoraSharp reads or writes
/// (PEFT's <c>LoraConfig</c> plus the <c>PeftConfig</c> base fields), and their mapping to <see cref="LoraConfig"/>.
/// </summary>
/// <remarks>
/// Every other field PEFT writes is written at its PEFT default (<see cref="PeftConfigWriter"/>) and, on reading,
/// either checked to be at a default that does not change the math or ignored (<see cref="PeftConfigReader"/>).
/// </remarks>
internal sealed record PeftAdapterConfig
{
    /// <summary>The file name PEFT uses (<c>CONFIG_NAME</c>).</summary>
    public const string FileName = "adapter_config.json";

    /// <summary>PEFT's <c>PeftType.LORA</c>, the only <c>peft_type</c> DoraSharp reads (DoRA is LoRA with <c>use_dora</c>).</summary>
    public const string LoraPeftType = "LORA";

    /// <summary>
    /// What DoraSharp writes as <c>peft_version</c>: the PEFT version whose field set and layout it reproduces
    /// (the one that wrote the golden fixture), with a PEP 440 local label saying who wrote the file. PEFT only
    /// parses this field for OFT adapters; for LoRA it is informational.
    /// </summary>
    public const string WriterPeftVersion = "0.20.1.dev0+dorasharp";

    public string PeftType { get; init; } = LoraPeftType;
    public int R { get; init; } = 8;
    public double LoraAlpha { get; init; } = 8;
    public double LoraDropout { get; init; }

    /// <summary><c>target_modules</c> as a list (PEFT stores a set; written sorted).</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary><c>target_modules</c> as a string: a regular expression PEFT matches with <c>re.fullmatch</c>.</summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary><c>exclude_modules</c> as a list, or null.</summary>
    public IReadOnlyList<string>? ExcludeModules { get; init; }

    /// <summary><c>modules_to_save</c>: modules trained in full and saved with the adapter, or null (PEFT keeps the list's order).</summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    public bool UseDora { get; init; }
    public bool UseRsLora { get; init; }

    /// <summary><c>init_lora_weights</c> as in the JSON: a bool or a string.</summary>
    public object InitLoraWeights { get; init; } = true;

    public bool InferenceMode { get; init; } = true;
    public string? TaskType { get; init; }
    public string? BaseModelNameOrPath { get; init; }
    public string? Revision { get; init; }
    public PeftAutoMapping? AutoMapping { get; init; }
    public string? PeftVersion { get; init; } = WriterPeftVersion;

    /// <summary>Fields of the file this version does not know; ignored, as PEFT ignores fields newer than itself.</summary>
    public IReadOnlyList<string> IgnoredFields { get; init; } = [];

    /// <summary>
    /// The <see cref="LoraConfig"/> this adapter is built from. <c>init_lora_weights</c> only decides the
    /// starting values of A and B, which a load overwrites: "gaussian" maps to <see cref="LoraInit.Gaussian"/>,
    /// every other accepted value to <see cref="LoraInit.Default"/>.
    /// </summary>
    public LoraConfig ToLoraConfig() => new()
    {
        R = R,
        LoraAlpha = LoraAlpha,
        LoraDropout = LoraDropout,
        TargetModules = TargetModules,
        TargetModulesRegex = TargetModulesRegex,
        ExcludeModules = ExcludeModules,
        ModulesToSave = ModulesToSave,
        UseDora = UseDora,
        UseRsLora = UseRsLora,
        InitLoraWeights = InitLoraWeights is string s && s.Equals("gaussian", StringComparison.OrdinalIgnoreCase)
            ? LoraInit.Gaussian
            : LoraInit.Default,
        Bias = LoraBias.None,
    };

    /// <summary>
    /// The config PEFT would save for <paramref name="config"/>: <c>inference_mode</c> true (PEFT's
    /// <c>save_pretrained</c> sets it while writing), <c>task_type</c> null and hence an <c>auto_mapping</c>.
    /// </summary>
    public static PeftAdapterConfig FromLoraConfig(LoraConfig config, AdapterSaveOptions options, PeftAutoMapping autoMapping) => new()
    {
        R = config.R,
        LoraAlpha = config.LoraAlpha,
        LoraDropout = config.LoraDropout,
        // PEFT turns the list into a set; a sorted, de-duplicated list is the same set in a stable order.
        TargetModules = config.TargetModules?.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
        TargetModulesRegex = config.TargetModulesRegex,
        ExcludeModules = config.ExcludeModules?.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
        ModulesToSave = config.ModulesToSave?.ToList(),
        UseDora = config.UseDora,
        UseRsLora = config.UseRsLora,
        InitLoraWeights = config.InitLoraWeights == LoraInit.Gaussian ? "gaussian" : true,
        InferenceMode = true,
        TaskType = null,
        BaseModelNameOrPath = options.BaseModelNameOrPath,
        Revision = options.Revision,
        AutoMapping = options.AutoMapping ?? autoMapping,
        PeftVersion = WriterPeftVersion,
    };
}
