using TorchSharp;

namespace DoraSharp.Tests.IO;

/// <summary>Small helpers for building tensors from bytes and reading their bytes back in tests.</summary>
internal static class TensorTestData
{
    /// <summary>The elements of <paramref name="tensor"/> as an array.</summary>
    public static T[] Values<T>(torch.Tensor tensor) where T : unmanaged
    {
        using var accessor = tensor.data<T>();
        return accessor.ToArray();
    }

    /// <summary>A copy of the raw bytes of a CPU, contiguous tensor.</summary>
    public static byte[] Bytes(torch.Tensor tensor) => tensor.NumberOfElements == 0 ? [] : tensor.bytes.ToArray();

    /// <summary>A CPU tensor of <paramref name="dtype"/> and <paramref name="shape"/> holding exactly <paramref name="bytes"/>.</summary>
    public static torch.Tensor FromBytes(torch.ScalarType dtype, long[] shape, byte[] bytes)
    {
        torch.Tensor tensor = torch.empty(shape, dtype);
        if (bytes.Length > 0)
        {
            tensor.bytes = bytes;
        }
        return tensor;
    }
}
