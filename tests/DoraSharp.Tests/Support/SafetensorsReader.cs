using System.Buffers.Binary;
using System.Text.Json;
using DoraSharp.Tests.IO;
using TorchSharp;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>
/// Reads the trusted golden files for the tests: a plain reader written from the safetensors format description
/// (8-byte little-endian header length, a JSON header of name → dtype, shape, data_offsets, then the data), kept
/// apart from the library's hardened reader, which it checks. (It replaced TorchSharp.PyBridge's reader, which
/// uses reflection-based System.Text.Json: this test process runs with that switched off, issue 13.)
/// </summary>
internal static class SafetensorsReader
{
    public static Dictionary<string, Tensor> Read(string path)
    {
        var file = File.ReadAllBytes(path);
        var headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(file));
        using var header = JsonDocument.Parse(file.AsMemory(8, headerLength));
        var data = file.AsSpan(8 + headerLength);
        var tensors = new Dictionary<string, Tensor>();
        foreach (var entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var dtype = entry.Value.GetProperty("dtype").GetString() switch
            {
                "F64" => ScalarType.Float64, "F32" => ScalarType.Float32, "F16" => ScalarType.Float16, "BF16" => ScalarType.BFloat16,
                "I64" => ScalarType.Int64, "I32" => ScalarType.Int32, "I16" => ScalarType.Int16, "I8" => ScalarType.Int8,
                "U8" => ScalarType.Byte, "BOOL" => ScalarType.Bool,
                var other => throw new InvalidDataException($"{path}: tensor {entry.Name} has dtype {other}, which this test reader does not know"),
            };
            var shape = entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            var offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(o => checked((int)o.GetInt64())).ToArray();
            tensors[entry.Name] = TensorTestData.FromBytes(dtype, shape, data[offsets[0]..offsets[1]].ToArray());
        }
        return tensors;
    }
}
