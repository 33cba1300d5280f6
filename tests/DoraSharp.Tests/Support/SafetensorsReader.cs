using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>Reads the trusted golden files for the tests.</summary>
internal static class SafetensorsReader
{
    public static Dictionary<string, Tensor> Read(string path) => TorchSharp.PyBridge.Safetensors.LoadStateDict(path);
}
