using System.Text.Json;
using System.Text.Unicode;

namespace DoraSharp.IO;

/// <summary>
/// Reads PEFT's <c>adapter_config.json</c> for a LoRA/DoRA adapter, strictly: every field DoraSharp uses is
/// type- and range-checked, and every PEFT option DoraSharp does not implement must be at a value that leaves
/// the math unchanged — otherwise the file is refused naming the field, never loaded with different results.
/// </summary>
/// <remarks>
/// Rules (PEFT's field semantics from <c>src/peft/tuners/lora/config.py</c> and <c>src/peft/config.py</c>):
/// <list type="bullet">
/// <item>A field that is absent takes PEFT's default, as the dataclass would. Fields this version does not know
/// are ignored and listed in <see cref="PeftAdapterConfig.IgnoredFields"/>, as PEFT ignores fields added by newer
/// versions (<c>_check_and_remove_unused_kwargs</c>).</item>
/// <item><c>peft_type</c> is required (PEFT's <c>MIN_EXPECTED_CONFIG_KEYS</c>) and must be "LORA".</item>
/// <item><c>r</c> is an integer ≥ 1; <c>lora_alpha</c> a finite number &gt; 0 whose scaling s = alpha / r (or
/// alpha / sqrt(r)) lies in [<see cref="LoraConfig.MinScaling"/>, <see cref="LoraConfig.MaxScaling"/>], where the
/// adapter's float32 math stays finite; <c>lora_dropout</c> in [0, 1).</item>
/// <item><c>target_modules</c> is a non-empty list of names or one regular expression (not "all-linear", which
/// PEFT expands to names before it saves); null is refused because PEFT then picks modules from a table of
/// Transformers architectures. <c>exclude_modules</c> and <c>modules_to_save</c> are null or a list.</item>
/// <item><c>init_lora_weights</c>: true, false, "gaussian", "orthogonal" and "eva" only choose the starting A
/// and B, which loading overwrites, so they are accepted. "pissa…", "olora", "corda", "loftq" and "lora_ga"
/// rewrite the base weights when PEFT injects the adapter, and "mica" selects a LoRA variant; they are refused.</item>
/// <item>Refused unless false: <c>fan_in_fan_out</c>, <c>lora_bias</c>, <c>use_qalora</c>. Refused unless
/// null (PEFT tests them with <c>is not None</c> or turns <c>{}</c> into a config object): <c>layers_to_transform</c>,
/// <c>layer_replication</c>, <c>trainable_token_indices</c>, <c>alora_invocation_tokens</c> and the variant
/// configs <c>use_bdlora</c>, <c>arrow_config</c>, <c>kasa_config</c>, <c>monteclora_config</c>,
/// <c>velora_config</c>. Refused unless null or empty (PEFT tests them for truthiness): <c>rank_pattern</c>,
/// <c>alpha_pattern</c>, <c>layers_pattern</c>, <c>target_parameters</c>,
/// <c>megatron_config</c>. <c>bias</c> must be "none".</item>
/// <item>Known but irrelevant to the math, hence not checked: <c>megatron_core</c>, <c>qalora_group_size</c>,
/// <c>loftq_config</c>, <c>eva_config</c>, <c>corda_config</c>, <c>lora_ga_config</c>,
/// <c>ensure_weight_tying</c>, <c>runtime_config</c>.</item>
/// <item>A key that appears twice is refused (Python keeps the last; a file that means two things is refused).</item>
/// </list>
/// </remarks>
internal static class PeftConfigReader
{
    /// <summary>
    /// The largest config read. PEFT's are about 1.3 kB; the cap keeps a hostile multi-gigabyte "config" from
    /// being read into memory.
    /// </summary>
    public const int MaxConfigBytes = 16 * 1024 * 1024;

    private static readonly Dictionary<string, string> MustBeFalse = new(StringComparer.Ordinal)
    {
        ["fan_in_fan_out"] = "it means the base layer stores its weight transposed (GPT-2's Conv1D); DoraSharp adapts Linear layers with PyTorch's (out, in) layout only",
        ["lora_bias"] = "it adds a trained bias to lora_B, which DoraSharp's adapters do not have",
        ["use_qalora"] = "QALoRA pools the input in groups before lora_A; DoraSharp does not implement it",
    };

    // Fields PEFT tests with `is not None`, or turns even an empty dict into a (truthy) config object: only null
    // is their default. E.g. layers_to_transform=[] would transform no layer at all, velora_config={} enables VeLoRA.
    private static readonly Dictionary<string, string> MustBeNull = new(StringComparer.Ordinal)
    {
        ["layers_to_transform"] = "restricting the adapters to some layer indices is not supported",
        ["layer_replication"] = "it changes the base model's structure, which DoraSharp does not do",
        ["trainable_token_indices"] = "trainable token embeddings are not supported",
        ["alora_invocation_tokens"] = "activated LoRA (aLoRA) changes where the adapter applies; it is not supported",
        ["use_bdlora"] = "the block-diagonal LoRA variant is not supported",
        ["arrow_config"] = "Arrow routing is not supported",
        ["kasa_config"] = "the KaSA variant is not supported",
        ["monteclora_config"] = "the MonteCLoRA variant is not supported",
        ["velora_config"] = "the VeLoRA variant is not supported",
    };

    // Fields PEFT tests for truthiness, so an empty list or dict means the same as null.
    private static readonly Dictionary<string, string> MustBeEmpty = new(StringComparer.Ordinal)
    {
        ["rank_pattern"] = "per-module ranks are not supported; every adapter has rank r",
        ["alpha_pattern"] = "per-module alphas are not supported; every adapter has lora_alpha",
        ["layers_pattern"] = "it only applies together with layers_to_transform, which is not supported",
        ["target_parameters"] = "LoRA on bare parameters (rather than modules) is not supported",
        ["megatron_config"] = "Megatron parallel layers are not supported",
    };

    private static readonly HashSet<string> KnownIrrelevant = new(StringComparer.Ordinal)
    {
        "megatron_core", "qalora_group_size", "loftq_config", "eva_config", "corda_config", "lora_ga_config",
        "ensure_weight_tying", "runtime_config",
    };

    /// <summary>Reads and checks the config file at <paramref name="path"/>.</summary>
    /// <exception cref="AdapterFormatException">The file is too large, not JSON, or a field is invalid or unsupported.</exception>
    /// <exception cref="IOException">The file cannot be read.</exception>
    public static PeftAdapterConfig Read(string path)
    {
        RegularFile.Check(path, problem => new AdapterFormatException(path, problem));
        byte[] bytes;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            if (stream.Length > MaxConfigBytes)
            {
                throw new AdapterFormatException(path, $"the file is {stream.Length} bytes long, more than the {MaxConfigBytes}-byte limit for an adapter config (PEFT's are about 1.3 kB)");
            }
            bytes = new byte[stream.Length];
            stream.ReadExactly(bytes);
        }
        return Parse(path, bytes);
    }

    /// <summary>Parses and checks config text already in memory; <paramref name="path"/> is named in errors.</summary>
    public static PeftAdapterConfig Parse(string path, ReadOnlyMemory<byte> json)
    {
        if (!Utf8.IsValid(json.Span))
        {
            throw new AdapterFormatException(path, "the file is not valid UTF-8 text; expected PEFT's adapter_config.json (JSON)");
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new AdapterFormatException(path, $"the file is not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            return new Parser(path).Read(document.RootElement);
        }
    }

    private sealed class Parser(string path)
    {
        private PeftAdapterConfig _config = new() { PeftType = "", PeftVersion = null, InferenceMode = false };
        private bool _sawPeftType;

        /// <summary>Sets LoRA fields; the ones never set keep <see cref="LoraConfig"/>'s defaults, which are PEFT's.</summary>
        private void SetLora(Func<LoraConfig, LoraConfig> change) => _config = _config with { Lora = change(_config.Lora) };

        public PeftAdapterConfig Read(JsonElement root)
        {
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new AdapterFormatException(path, $"the file holds {Describe(root)}; expected a JSON object of config fields");
            }
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var ignored = new List<string>();
            foreach (JsonProperty property in root.EnumerateObject())
            {
                string name = Name(property);
                if (!seen.Add(name))
                {
                    throw new AdapterFormatException(path, $"the field {DisplayText.Quote(name)} appears more than once; each field must appear once");
                }
                if (!ReadField(name, property.Value)) ignored.Add(name);
            }
            if (!_sawPeftType)
            {
                throw Fail("peft_type", "is missing; PEFT requires it, and DoraSharp reads \"LORA\" adapters");
            }
            if (_config.Lora.TargetModules is null && _config.Lora.TargetModulesRegex is null)
            {
                throw Fail("target_modules", "is missing or null; PEFT then picks modules from its table of Transformers architectures, which DoraSharp cannot reproduce: list the module names");
            }
            // Checked once every field is read: the scaling depends on r, lora_alpha and use_rslora, in any order.
            if (LoraConfig.ScalingProblem(_config.Lora.LoraAlpha, _config.Lora.R, _config.Lora.UseRsLora) is { } scalingProblem)
            {
                throw Fail("lora_alpha", $"is {_config.Lora.LoraAlpha.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}; {scalingProblem}");
            }
            return _config with { IgnoredFields = ignored };
        }

        /// <summary>Applies one field; false when the field is unknown to this version.</summary>
        private bool ReadField(string name, JsonElement value)
        {
            switch (name)
            {
                case "peft_type":
                    if (value.ValueKind != JsonValueKind.String) throw Fail(name, $"is {Describe(value)}; expected \"LORA\"");
                    string type = String(name, value);
                    if (type != PeftAdapterConfig.LoraPeftType)
                    {
                        throw Fail(name, $"is {DisplayText.Quote(type)}; DoraSharp reads LoRA and DoRA adapters, whose peft_type is \"LORA\"");
                    }
                    _config = _config with { PeftType = type };
                    _sawPeftType = true;
                    return true;
                case "r":
                    SetLora(c => c with { R = Rank(name, value) });
                    return true;
                case "lora_alpha":
                    double alpha = Number(name, value);
                    if (!(alpha > 0)) throw Fail(name, $"is {Raw(value)}; lora_alpha must be a number > 0");
                    SetLora(c => c with { LoraAlpha = alpha });
                    return true;
                case "lora_dropout":
                    double dropout = Number(name, value);
                    if (!(dropout >= 0 && dropout < 1)) throw Fail(name, $"is {Raw(value)}; lora_dropout must be in [0, 1)");
                    SetLora(c => c with { LoraDropout = dropout });
                    return true;
                case "target_modules":
                    ReadTargets(name, value);
                    return true;
                case "exclude_modules":
                    if (value.ValueKind == JsonValueKind.String)
                    {
                        throw Fail(name, "is a regular expression, which DoraSharp does not support for exclude_modules; list the module names instead");
                    }
                    List<string>? exclude = value.ValueKind == JsonValueKind.Null ? null : Names(name, value, allowEmpty: true);
                    SetLora(c => c with { ExcludeModules = exclude });
                    return true;
                case "modules_to_save":
                    // PEFT tests the list for truthiness: [] means none.
                    List<string>? toSave = value.ValueKind == JsonValueKind.Null ? null : Names(name, value, allowEmpty: true);
                    SetLora(c => c with { ModulesToSave = toSave is { Count: > 0 } ? toSave : null });
                    return true;
                case "use_dora":
                    SetLora(c => c with { UseDora = Bool(name, value) });
                    return true;
                case "use_rslora":
                    SetLora(c => c with { UseRsLora = Bool(name, value) });
                    return true;
                case "init_lora_weights":
                    _config = _config with { InitLoraWeights = Init(name, value) };
                    return true;
                case "bias":
                    string bias = String(name, value);
                    if (bias != "none")
                    {
                        throw Fail(name, $"is {DisplayText.Quote(bias)}; DoraSharp supports only \"none\" (\"all\" and \"lora_only\" train base biases and save them with the adapter)");
                    }
                    return true;
                case "inference_mode":
                    _config = _config with { InferenceMode = Bool(name, value) };
                    return true;
                case "task_type":
                    _config = _config with { TaskType = OptionalString(name, value) };
                    return true;
                case "base_model_name_or_path":
                    _config = _config with { BaseModelNameOrPath = OptionalString(name, value) };
                    return true;
                case "revision":
                    _config = _config with { Revision = OptionalString(name, value) };
                    return true;
                case "peft_version":
                    _config = _config with { PeftVersion = OptionalString(name, value) };
                    return true;
                case "auto_mapping":
                    _config = _config with { AutoMapping = AutoMapping(name, value) };
                    return true;
                default:
                    if (MustBeFalse.TryGetValue(name, out string? whyFalse))
                    {
                        if (Bool(name, value)) throw Fail(name, $"is true: {whyFalse}; only false (PEFT's default) can be loaded");
                        return true;
                    }
                    if (MustBeNull.TryGetValue(name, out string? whyNull))
                    {
                        if (value.ValueKind != JsonValueKind.Null) throw Fail(name, $"is {Raw(value)}: {whyNull}; only null (PEFT's default) can be loaded");
                        return true;
                    }
                    if (MustBeEmpty.TryGetValue(name, out string? whyEmpty))
                    {
                        bool empty = value.ValueKind == JsonValueKind.Null
                            || (value.ValueKind == JsonValueKind.Object && !value.EnumerateObject().Any())
                            || (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0);
                        if (!empty) throw Fail(name, $"is {Raw(value)}: {whyEmpty}; only null or empty (PEFT's default) can be loaded");
                        return true;
                    }
                    return KnownIrrelevant.Contains(name);
            }
        }

        private void ReadTargets(string name, JsonElement value)
        {
            switch (value.ValueKind)
            {
                case JsonValueKind.Null:
                    SetLora(c => c with { TargetModules = null, TargetModulesRegex = null });
                    return;
                case JsonValueKind.String:
                    string pattern = String(name, value);
                    if (pattern == "all-linear")
                    {
                        throw Fail(name, "is \"all-linear\"; PEFT replaces this wildcard by the module names before saving, so a saved config should list them; list the module names instead");
                    }
                    try
                    {
                        // PEFT matches it with Python's re.fullmatch: Python's syntax, translated (PythonRegex).
                        PythonRegex.Validate(pattern);
                    }
                    catch (PythonRegexException e)
                    {
                        throw Fail(name, $"is {DisplayText.Quote(pattern)}, which is not a valid Python regular expression or has no faithful .NET translation ({e.Message})");
                    }
                    SetLora(c => c with { TargetModules = null, TargetModulesRegex = pattern });
                    return;
                default:
                    List<string> targets = Names(name, value, allowEmpty: false);
                    SetLora(c => c with { TargetModules = targets, TargetModulesRegex = null });
                    return;
            }
        }

        private List<string> Names(string name, JsonElement value, bool allowEmpty)
        {
            if (value.ValueKind != JsonValueKind.Array)
            {
                throw Fail(name, $"is {Describe(value)}; expected a list of module names{(name == "target_modules" ? " or one regular expression" : "")}");
            }
            var names = new List<string>();
            foreach (JsonElement item in value.EnumerateArray())
            {
                string entry = String($"{name}[{names.Count}]", item);
                if (string.IsNullOrWhiteSpace(entry)) throw Fail($"{name}[{names.Count}]", "is empty; module names must not be empty");
                names.Add(entry);
            }
            if (names.Count == 0 && !allowEmpty)
            {
                throw Fail(name, "is an empty list, so no module would be adapted (PEFT uses that with target_parameters, which DoraSharp does not support)");
            }
            return names;
        }

        private object Init(string name, JsonElement value)
        {
            if (value.ValueKind is JsonValueKind.True or JsonValueKind.False) return value.GetBoolean();
            if (value.ValueKind != JsonValueKind.String) throw Fail(name, $"is {Describe(value)}; expected true, false or the name of an init scheme");
            string scheme = String(name, value);
            if (scheme.Equals("gaussian", StringComparison.OrdinalIgnoreCase) || scheme == "orthogonal" || scheme == "eva")
            {
                return scheme; // these only choose the starting A and B, which the load overwrites
            }
            string[] rewritesBase = ["pissa", "olora", "corda", "loftq", "lora_ga"];
            if (rewritesBase.Any(p => scheme.StartsWith(p, StringComparison.OrdinalIgnoreCase)))
            {
                throw Fail(name, $"is {DisplayText.Quote(scheme)}: that scheme rewrites the base weights when PEFT injects the adapter, so the adapter only works on that modified base model, which DoraSharp does not reproduce (convert it with PEFT's path_initial_model_for_weight_conversion)");
            }
            if (scheme.Equals("mica", StringComparison.OrdinalIgnoreCase))
            {
                throw Fail(name, "is \"mica\", which selects the MiCA LoRA variant; DoraSharp does not implement it");
            }
            throw Fail(name, $"is {DisplayText.Quote(scheme)}, an init scheme DoraSharp does not know; accepted: true, false, \"gaussian\", \"orthogonal\", \"eva\"");
        }

        private int Rank(string name, JsonElement value)
        {
            if (value.ValueKind != JsonValueKind.Number) throw Fail(name, $"is {Describe(value)}; r must be an integer >= 1");
            if (!value.TryGetInt64(out long r)) throw Fail(name, $"is {Raw(value)}, which is not an integer; r must be an integer >= 1");
            if (r < 1) throw Fail(name, $"is {r}; r must be an integer >= 1");
            if (r > int.MaxValue) throw Fail(name, $"is {r}; r must be at most {int.MaxValue}");
            return (int)r;
        }

        private double Number(string name, JsonElement value)
        {
            if (value.ValueKind != JsonValueKind.Number) throw Fail(name, $"is {Describe(value)}; expected a number");
            if (!value.TryGetDouble(out double number) || !double.IsFinite(number))
            {
                throw Fail(name, $"is {Raw(value)}, which is not a finite number");
            }
            return number;
        }

        private bool Bool(string name, JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Fail(name, $"is {Describe(value)}; expected true or false"),
        };

        private string String(string name, JsonElement value)
        {
            if (value.ValueKind != JsonValueKind.String) throw Fail(name, $"is {Describe(value)}; expected a string");
            try
            {
                return value.GetString()!;
            }
            catch (InvalidOperationException e)
            {
                throw Fail(name, $"is not a valid Unicode string ({e.Message})");
            }
        }

        private string? OptionalString(string name, JsonElement value) =>
            value.ValueKind == JsonValueKind.Null ? null : String(name, value);

        private PeftAutoMapping? AutoMapping(string name, JsonElement value)
        {
            if (value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.Object) throw Fail(name, $"is {Describe(value)}; expected null or an object");
            string? cls = null, library = null;
            foreach (JsonProperty entry in value.EnumerateObject())
            {
                string key = Name(entry);
                if (key == "base_model_class") cls = OptionalString($"{name}.{key}", entry.Value);
                else if (key == "parent_library") library = OptionalString($"{name}.{key}", entry.Value);
            }
            return cls is null || library is null ? null : new PeftAutoMapping(cls, library);
        }

        private string Name(JsonProperty property)
        {
            try
            {
                return property.Name;
            }
            catch (InvalidOperationException e)
            {
                // System.Text.Json decodes escapes lazily; an escaped lone surrogate fails only here.
                throw new AdapterFormatException(path, $"a field name is not a valid Unicode string ({e.Message})", e);
            }
        }

        // Field names passed here are this reader's own constants, so they need no escaping.
        private AdapterFormatException Fail(string field, string problem) => new(path, $"field \"{field}\" {problem}");

        /// <summary>A value's JSON text for a message: numbers and literals as they are (cut if long), anything else quoted and escaped.</summary>
        private static string Raw(JsonElement value)
        {
            string raw = value.GetRawText();
            if (value.ValueKind is not (JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null)) return DisplayText.Quote(raw);
            return raw.Length <= 80 ? raw : raw[..80] + "…";
        }

        private static string Describe(JsonElement value) => value.ValueKind switch
        {
            JsonValueKind.Object => "an object",
            JsonValueKind.Array => "a list",
            JsonValueKind.String => $"the string {Raw(value)}",
            JsonValueKind.Number => $"the number {Raw(value)}",
            JsonValueKind.True or JsonValueKind.False => $"the boolean {Raw(value)}",
            JsonValueKind.Null => "null",
            _ => value.ValueKind.ToString(),
        };
    }
}
