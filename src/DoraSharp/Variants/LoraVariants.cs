using TorchSharp;

namespace DoraSharp;

/// <summary>
/// Chooses the variant an adapter layer delegates to (PEFT's <c>resolve_lora_variant</c>, kept out of the layers so
/// that a new variant touches no layer): DoRA (<see cref="LoraConfig.UseDora"/>) per layer type, none for plain LoRA.
/// </summary>
internal static class LoraVariants
{
    /// <summary>The variant for <paramref name="layer"/> under its config, or null for plain LoRA.</summary>
    /// <exception cref="NotSupportedException">The config asks for a variant this layer type does not have.</exception>
    public static LoraVariant? For(LoraLayer layer)
    {
        if (!layer.Config.UseDora) return null;
        return layer switch
        {
            LoraLinear => new DoraLinearVariant(),
            LoraConv2d => new DoraConv2dVariant(),
            LoraEmbedding => new DoraEmbeddingVariant(),
            _ => throw new NotSupportedException($"DoRA is not implemented for {layer.GetType().Name}; it is for LoraLinear, LoraConv2d and LoraEmbedding."),
        };
    }
}
