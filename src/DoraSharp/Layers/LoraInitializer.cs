using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp;

/// <summary>PEFT's <c>reset_lora_parameters</c> for the init schemes of <see cref="LoraInit"/>.</summary>
internal static class LoraInitializer
{
    /// <summary>
    /// Linear (and Conv) factors: A Kaiming-uniform with a = sqrt(5) — bound 1/sqrt(fan_in), the default
    /// init of <c>nn.Linear</c> — or normal with std 1/r for <see cref="LoraInit.Gaussian"/>; B zeros, so the
    /// update B·A starts at zero and the adapted model starts equal to the base model.
    /// </summary>
    public static void InitLinearFactors(Tensor loraA, Tensor loraB, LoraConfig config)
    {
        using var noGrad = no_grad();
        if (config.InitLoraWeights == LoraInit.Gaussian)
            nn.init.normal_(loraA, mean: 0, std: 1.0 / config.R);
        else
            nn.init.kaiming_uniform_(loraA, a: System.Math.Sqrt(5));
        nn.init.zeros_(loraB);
    }

    /// <summary>
    /// Embedding factors, the other way round (PEFT's <c>reset_lora_parameters</c>, after loralib): A
    /// (r, num_embeddings) zeros and B (embedding_dim, r) standard normal — <c>nn.Embedding</c>'s default
    /// init. PEFT uses this for every init scheme that is not a special one, <see cref="LoraInit.Gaussian"/>
    /// included: its "gaussian" branch only touches <c>lora_A</c> modules, which an embedding does not have.
    /// </summary>
    public static void InitEmbeddingFactors(Tensor loraA, Tensor loraB)
    {
        using var noGrad = no_grad();
        nn.init.zeros_(loraA);
        nn.init.normal_(loraB);
    }
}
