using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>Builds the adapter layer for a base layer type, or says the type is not supported.</summary>
internal static class LoraLayerFactory
{
    /// <summary>The layer types adapters can wrap, for error messages.</summary>
    public const string SupportedTypes = "Linear, Embedding or Conv2d";

    public static bool IsSupported(nn.Module module) => module is Linear or Embedding or Conv2d;

    public static LoraLayer Create(nn.Module module, LoraConfig config) => module switch
    {
        Linear linear => new LoraLinear(linear, config),
        Embedding embedding => new LoraEmbedding(embedding, config),
        Conv2d conv => new LoraConv2d(conv, config),
        _ => throw new AdapterInjectionException(
            $"Cannot adapt a {module.GetType().Name}; supported layer types: {SupportedTypes}."),
    };
}
