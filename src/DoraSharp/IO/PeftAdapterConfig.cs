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

    /// <summary><c>peft_type</c>: always <see cref="LoraPeftType"/> once read.</summary>
    public string PeftType { get; init; } = LoraPeftType;

    /// <summary>
    /// The LoRA fields (<c>r</c>, <c>lora_alpha</c>, <c>lora_dropout</c>, <c>target_modules</c>, <c>exclude_modules</c>,
    /// <c>modules_to_save</c>, <c>use_dora</c>, <c>use_rslora</c>) as the <see cref="LoraConfig"/> they mean. Its defaults
    /// are PEFT's, so an absent field takes PEFT's default from the one place defaults are defined.
    /// <c>init_lora_weights</c> is kept as written (<see cref="InitLoraWeights"/>), and mapped by <see cref="ToLoraConfig"/>.
    /// </summary>
    public LoraConfig Lora { get; init; } = new();

    /// <summary><c>init_lora_weights</c> as in the JSON: a bool or a string.</summary>
    public object InitLoraWeights { get; init; } = true;

    /// <summary><c>inference_mode</c>; PEFT's <c>save_pretrained</c> writes true.</summary>
    public bool InferenceMode { get; init; } = true;

    /// <summary><c>task_type</c>, or null (DoraSharp writes null: a plain <c>PeftModel</c>).</summary>
    public string? TaskType { get; init; }

    /// <summary><c>base_model_name_or_path</c>, informational.</summary>
    public string? BaseModelNameOrPath { get; init; }

    /// <summary><c>revision</c> of the base model, informational.</summary>
    public string? Revision { get; init; }

    /// <summary><c>auto_mapping</c>: the base model's class and library, written with a null <c>task_type</c>.</summary>
    public PeftAutoMapping? AutoMapping { get; init; }

    /// <summary><c>peft_version</c>, informational for LoRA.</summary>
    public string? PeftVersion { get; init; } = WriterPeftVersion;

    /// <summary>Fields of the file this version does not know; ignored, as PEFT ignores fields newer than itself.</summary>
    public IReadOnlyList<string> IgnoredFields { get; init; } = [];

    /// <summary>
    /// The <see cref="LoraConfig"/> this adapter is built from. <c>init_lora_weights</c> only decides the
    /// starting values of A and B, which a load overwrites: "gaussian" maps to <see cref="LoraInit.Gaussian"/>,
    /// every other accepted value to <see cref="LoraInit.Default"/>.
    /// </summary>
    public LoraConfig ToLoraConfig() => Lora with
    {
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
        Lora = config with
        {
            // PEFT turns the list into a set; a sorted, de-duplicated list is the same set in a stable order.
            TargetModules = config.TargetModules?.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            ExcludeModules = config.ExcludeModules?.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList(),
            ModulesToSave = config.ModulesToSave?.ToList(),
        },
        InitLoraWeights = config.InitLoraWeights == LoraInit.Gaussian ? "gaussian" : true,
        InferenceMode = true,
        TaskType = null,
        BaseModelNameOrPath = options.BaseModelNameOrPath,
        Revision = options.Revision,
        AutoMapping = options.AutoMapping ?? autoMapping,
        PeftVersion = WriterPeftVersion,
    };
}
