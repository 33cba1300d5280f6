namespace DoraSharp.IO;

/// <summary>Which adapter tensor a key of <c>adapter_model.safetensors</c> holds.</summary>
internal enum AdapterTensorKind
{
    /// <summary>The down factor A: <c>lora_A.weight</c> (Linear, Conv2d) or <c>lora_embedding_A</c> (Embedding).</summary>
    LoraA,

    /// <summary>The up factor B: <c>lora_B.weight</c> (Linear, Conv2d) or <c>lora_embedding_B</c> (Embedding).</summary>
    LoraB,

    /// <summary><c>lora_magnitude_vector</c>: the DoRA magnitude, one entry per output feature.</summary>
    Magnitude,
}

/// <summary>The base layer types an adapter file can hold adapters for; PEFT names their tensors differently.</summary>
internal enum AdapterLayerType
{
    /// <summary><c>nn.Linear</c>: A and B are <c>nn.Linear</c> modules, so their keys end in <c>.weight</c>.</summary>
    Linear,

    /// <summary><c>nn.Embedding</c>: A and B are parameters of a <c>ParameterDict</c>, so their keys have no <c>.weight</c>.</summary>
    Embedding,

    /// <summary><c>nn.Conv2d</c>: A and B are <c>nn.Conv2d</c> modules, named as for Linear.</summary>
    Conv2d,
}

/// <summary>
/// The tensor keys of PEFT's <c>adapter_model.safetensors</c>: <c>base_model.model.&lt;module path&gt;.&lt;name&gt;</c>,
/// where the name is <c>lora_A.weight</c> and <c>lora_B.weight</c> for a Linear or Conv2d module,
/// <c>lora_embedding_A</c> and <c>lora_embedding_B</c> for an Embedding, and, for DoRA, <c>lora_magnitude_vector</c>.
/// </summary>
/// <remarks>
/// The prefix is the path of the user's model inside a <c>PeftModel</c> (<c>PeftModel.base_model</c> is the
/// <c>LoraModel</c> tuner, whose <c>model</c> is the user's model). PEFT's <c>get_peft_model_state_dict</c> removes
/// the adapter name (<c>lora_A.default.weight</c> → <c>lora_A.weight</c>, <c>lora_embedding_A.default</c> →
/// <c>lora_embedding_A</c>: PEFT's <c>lora.Embedding</c> keeps its factors in a <c>ParameterDict</c>, not in modules)
/// and, for DoRA, the ".weight" of <c>lora_magnitude_vector.default.weight</c>, a leftover of a refactor it keeps the
/// format stable across. DoraSharp's own state-dict names are these keys without the prefix.
/// </remarks>
internal static class AdapterKeys
{
    /// <summary>The prefix of every key PEFT's <c>PeftModel.save_pretrained</c> writes.</summary>
    public const string Prefix = "base_model.model.";

    private static readonly (string Name, AdapterTensorKind Kind)[] Names =
    [
        ("lora_A.weight", AdapterTensorKind.LoraA),
        ("lora_B.weight", AdapterTensorKind.LoraB),
        ("lora_embedding_A", AdapterTensorKind.LoraA),
        ("lora_embedding_B", AdapterTensorKind.LoraB),
        (LoraLayer.MagnitudeName, AdapterTensorKind.Magnitude),
    ];

    /// <summary>
    /// The name PEFT gives <paramref name="kind"/> on a layer of <paramref name="type"/>, after the module path: the
    /// adapter layer's own state-dict name (<see cref="LoraLayer.AdapterParameters"/>).
    /// </summary>
    public static string Name(AdapterLayerType type, AdapterTensorKind kind) => (type, kind) switch
    {
        (_, AdapterTensorKind.Magnitude) => LoraLayer.MagnitudeName,
        (AdapterLayerType.Embedding, AdapterTensorKind.LoraA) => "lora_embedding_A",
        (AdapterLayerType.Embedding, _) => "lora_embedding_B",
        (_, AdapterTensorKind.LoraA) => "lora_A.weight",
        _ => "lora_B.weight",
    };

    /// <summary>The file key of <paramref name="kind"/> for the <paramref name="type"/> module at <paramref name="modulePath"/>.</summary>
    public static string For(string modulePath, AdapterLayerType type, AdapterTensorKind kind) => Prefix + modulePath + "." + Name(type, kind);

    /// <summary>
    /// Splits a file key into module path and tensor kind; false when it is not a LoRA tensor key with PEFT's
    /// prefix (such as a saved bias or a modules_to_save weight).
    /// </summary>
    public static bool TryParse(string key, out string modulePath, out AdapterTensorKind kind) => TryParse(key, out modulePath, out kind, out _);

    /// <summary>As the other overload, also giving the tensor's name after the module path (e.g. "lora_embedding_A").</summary>
    public static bool TryParse(string key, out string modulePath, out AdapterTensorKind kind, out string name)
    {
        modulePath = "";
        kind = default;
        name = "";
        if (!key.StartsWith(Prefix, StringComparison.Ordinal)) return false;
        string rest = key[Prefix.Length..];
        foreach ((string n, AdapterTensorKind k) in Names)
        {
            // ".<name>" after a non-empty module path.
            if (rest.Length > n.Length + 1 && rest.EndsWith(n, StringComparison.Ordinal) && rest[^(n.Length + 1)] == '.')
            {
                modulePath = rest[..^(n.Length + 1)];
                kind = k;
                name = n;
                return true;
            }
        }
        return false;
    }

    /// <summary>The names PEFT's LoRA keys end in, for messages.</summary>
    public static string AllNames => string.Join(", ", Names.Select(n => "." + n.Name));
}
