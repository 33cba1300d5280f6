namespace DoraSharp;

/// <summary>How the low-rank factors are initialised (PEFT's <c>init_lora_weights</c>).</summary>
public enum LoraInit
{
    /// <summary>
    /// PEFT's default (<c>init_lora_weights=True</c>): A Kaiming-uniform with a = sqrt(5) (the same as
    /// <c>nn.Linear</c>'s default weight init), B zeros, so the adapted layer starts equal to the base layer.
    /// For an Embedding the roles swap: A zeros, B normal.
    /// </summary>
    Default,

    /// <summary>PEFT's <c>init_lora_weights="gaussian"</c>: A normal with std 1/r, B zeros.</summary>
    Gaussian,
}

/// <summary>Which biases are trained (PEFT's <c>bias</c>). Only <see cref="None"/> is supported.</summary>
public enum LoraBias
{
    /// <summary>No bias is trained: base biases stay frozen (PEFT's <c>bias="none"</c>).</summary>
    None,
}

/// <summary>
/// The options of a LoRA or DoRA adapter, named and defaulted as Hugging Face PEFT's <c>LoraConfig</c>
/// (r=8, lora_alpha=8, lora_dropout=0, init_lora_weights=True, use_rslora=False, use_dora=False,
/// bias="none").
/// <para>LoRA: Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", arXiv 2106.09685.
/// DoRA: Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", arXiv 2402.09353.
/// rsLoRA: Kalajdzievski 2023, "A Rank Stabilization Scaling Factor for Fine-Tuning with LoRA",
/// arXiv 2312.03732.</para>
/// </summary>
public sealed record LoraConfig
{
    /// <summary>
    /// Rank r of the update B·A (PEFT's <c>r</c>). Must be at least 1, and small enough that each adapter holds at most
    /// <see cref="LoraLayer.MaxAdapterValues"/> values (checked when the layer is built, which knows its size).
    /// </summary>
    public int R { get; init; } = 8;

    /// <summary>
    /// The alpha of the scaling s = alpha / r (or alpha / sqrt(r) with <see cref="UseRsLora"/>);
    /// PEFT's <c>lora_alpha</c>. Must be positive and give a scaling between <see cref="MinScaling"/> and
    /// <see cref="MaxScaling"/>.
    /// </summary>
    public double LoraAlpha { get; init; } = 8;

    /// <summary>Dropout probability on the adapter's input in training mode; in [0, 1). PEFT's <c>lora_dropout</c>.</summary>
    public double LoraDropout { get; init; }

    /// <summary>
    /// The modules to adapt, as PEFT matches a list: a module is targeted when its full dotted path equals
    /// an entry or ends with "." + entry (so <c>"query"</c> matches <c>encoder.layer.0.attention.self.query</c>).
    /// Leave null and set <see cref="TargetModulesRegex"/> to match by regular expression instead.
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>
    /// One regular expression that must match a module's whole dotted path (PEFT's
    /// <c>target_modules</c> given as a string, matched with <c>re.fullmatch</c>). It is a Python regular
    /// expression (e.g. <c>(?P&lt;name&gt;…)</c>, <c>(?x)</c> comments, <c>\Z</c>), translated to .NET with Python's
    /// meaning; a construct without a faithful translation is refused by name. Matching all module paths of one
    /// Wrap or load may take at most one second in all.
    /// </summary>
    public string? TargetModulesRegex { get; init; }

    /// <summary>Modules never adapted, matched like <see cref="TargetModules"/> (PEFT's <c>exclude_modules</c> list).</summary>
    public IReadOnlyList<string>? ExcludeModules { get; init; }

    /// <summary>
    /// Modules trained in full beside the adapters and saved with them, e.g. a new classification head (PEFT's
    /// <c>modules_to_save</c>). Matched as PEFT matches them: a module is selected when its dotted path ends with
    /// an entry as a plain string (so, as in PEFT, <c>"classifier"</c> also selects <c>pre_classifier</c>).
    /// These modules and everything inside them get no LoRA adapter. Each named adapter has its own copy of the
    /// module's values; while adapters are disabled the module computes with its original values.
    /// </summary>
    public IReadOnlyList<string>? ModulesToSave { get; init; }

    /// <summary>Use DoRA: decompose the weight into magnitude and direction and train the magnitude too (PEFT's <c>use_dora</c>).</summary>
    public bool UseDora { get; init; }

    /// <summary>Use rsLoRA's scaling alpha / sqrt(r) instead of alpha / r (PEFT's <c>use_rslora</c>).</summary>
    public bool UseRsLora { get; init; }

    /// <summary>How A and B are initialised (PEFT's <c>init_lora_weights</c>).</summary>
    public LoraInit InitLoraWeights { get; init; } = LoraInit.Default;

    /// <summary>Which biases train (PEFT's <c>bias</c>); only <see cref="LoraBias.None"/>.</summary>
    public LoraBias Bias { get; init; } = LoraBias.None;

    /// <summary>The scaling s applied to B·A: alpha / r, or alpha / sqrt(r) with rsLoRA.</summary>
    public double Scaling => LoraMath.Scaling(LoraAlpha, R, UseRsLora);

    /// <summary>
    /// The largest scaling s accepted. The adapters compute in float32 (or float64), and libtorch refuses a scalar
    /// that overflows the tensor's dtype: the DoRA norm passes s² (docs/math.md eq. 11), so s above
    /// sqrt(3.4e38) ≈ 1.8e19 fails inside libtorch, and long before that s·B·A and s²·‖B_i‖²‖A‖² overflow to
    /// infinity for factors of ordinary size. At 1e6, s² = 1e12 leaves 26 orders of magnitude of float32 range for
    /// the factors. PEFT's users work with s between 1/r and a few hundred (alpha = 2r with rsLoRA at r = 4096
    /// gives 128), so the limit refuses only values that cannot be meant (e.g. lora_alpha 1e30).
    /// </summary>
    public const double MaxScaling = 1e6;

    /// <summary>
    /// The smallest scaling s accepted: s² (used by the DoRA norm) must stay a normal float32 number (above
    /// 1.2e-38) with room for the factors' norms; at 1e-12, s² = 1e-24. With factors of ordinary size (entries
    /// near 1) s·B·A is then below float32 rounding of any weight, so the limit refuses no useful adapter.
    /// </summary>
    public const double MinScaling = 1e-12;

    /// <summary>
    /// Why the scaling of (<paramref name="loraAlpha"/>, <paramref name="r"/>, <paramref name="useRsLora"/>) is
    /// out of range, or null when it is in [<see cref="MinScaling"/>, <see cref="MaxScaling"/>]; shared by
    /// <see cref="Validate"/> and the PEFT config reader so both refuse the same values with the same words.
    /// </summary>
    internal static string? ScalingProblem(double loraAlpha, int r, bool useRsLora)
    {
        double s = LoraMath.Scaling(loraAlpha, r, useRsLora);
        if (s is >= MinScaling and <= MaxScaling) return null;
        string formula = useRsLora ? "lora_alpha / sqrt(r)" : "lora_alpha / r";
        var c = System.Globalization.CultureInfo.InvariantCulture;
        return $"with r = {r}{(useRsLora ? " and use_rslora" : "")} the scaling s = {formula} = {s.ToString("R", c)}, " +
            $"but s must be in [{MinScaling.ToString("R", c)}, {MaxScaling.ToString("R", c)}]: a larger s overflows float32 in the adapter's math " +
            "(s² enters the DoRA norm), a smaller one makes the update vanish below float32 rounding";
    }

    /// <summary>
    /// Checks every option on its own (not against a model). Throws <see cref="LoraConfigException"/>
    /// naming the option, the value and what is allowed.
    /// </summary>
    public void Validate()
    {
        if (R < 1)
            throw new LoraConfigException(nameof(R), R, "r must be an integer >= 1");
        if (!(LoraAlpha > 0) || double.IsInfinity(LoraAlpha))
            throw new LoraConfigException(nameof(LoraAlpha), LoraAlpha, "lora_alpha must be a finite number > 0");
        if (ScalingProblem(LoraAlpha, R, UseRsLora) is { } scalingProblem)
            throw new LoraConfigException(nameof(LoraAlpha), LoraAlpha, scalingProblem);
        if (!(LoraDropout >= 0 && LoraDropout < 1))
            throw new LoraConfigException(nameof(LoraDropout), LoraDropout, "lora_dropout must be in [0, 1)");
        if (TargetModules is null && TargetModulesRegex is null)
            throw new LoraConfigException(nameof(TargetModules), null, "set TargetModules (names or name suffixes) or TargetModulesRegex");
        if (TargetModules is not null && TargetModulesRegex is not null)
            throw new LoraConfigException(nameof(TargetModulesRegex), TargetModulesRegex, "set either TargetModules or TargetModulesRegex, not both");
        if (TargetModules is { Count: 0 })
            throw new LoraConfigException(nameof(TargetModules), "[]", "the list of target modules is empty");
        if (TargetModules?.FirstOrDefault(string.IsNullOrWhiteSpace) is { } blank)
            throw new LoraConfigException(nameof(TargetModules), $"'{blank}'", "module names must not be empty");
        if (TargetModulesRegex is not null)
        {
            // PEFT matches it with Python's re.fullmatch: checked with Python's syntax (PythonRegex), not .NET's.
            try { PythonRegex.Validate(TargetModulesRegex); }
            catch (PythonRegexException e)
            {
                throw new LoraConfigException(nameof(TargetModulesRegex), TargetModulesRegex,
                    $"not a valid regular expression for Python's re (PEFT matches it with re.fullmatch), or one DoraSharp cannot translate faithfully: {e.Message}");
            }
        }
        if (ModulesToSave?.FirstOrDefault(string.IsNullOrWhiteSpace) is { } blankSave)
            throw new LoraConfigException(nameof(ModulesToSave), $"'{blankSave}'", "module names must not be empty");
        if (!Enum.IsDefined(InitLoraWeights))
            throw new LoraConfigException(nameof(InitLoraWeights), InitLoraWeights, "expected Default or Gaussian");
        if (Bias != LoraBias.None)
            throw new LoraConfigException(nameof(Bias), Bias, "only bias = \"none\" is supported");
    }
}

/// <summary>An invalid <see cref="LoraConfig"/> option, or targets that do not fit the model.</summary>
public sealed class LoraConfigException : ArgumentException
{
    /// <summary>Creates the exception for option <paramref name="option"/> holding <paramref name="value"/>.</summary>
    public LoraConfigException(string option, object? value, string expected)
        : base($"LoraConfig.{option} = {Format(value)} is invalid: {expected}.", option)
    {
        Option = option;
    }

    /// <summary>As the public constructor, with the exception that caused it (a regex match that ran out of time).</summary>
    internal LoraConfigException(string option, object? value, string expected, Exception? innerException)
        : base($"LoraConfig.{option} = {Format(value)} is invalid: {expected}.", option, innerException)
    {
        Option = option;
    }

    /// <summary>The name of the offending option, e.g. "R".</summary>
    public string Option { get; }

    private static string Format(object? value) => value switch
    {
        null => "null",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "null",
    };
}
