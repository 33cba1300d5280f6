using System.Text;
using CsCheck;
using DoraSharp.IO;
using Xunit;
using TorchSharp;

namespace DoraSharp.Tests.IO;

/// <summary>Write then read gives back the same tensors, bit for bit; write(read(file)) gives back the file.</summary>
public sealed class SafetensorsRoundTripTests
{
    private static readonly torch.ScalarType[] Dtypes =
    [
        torch.ScalarType.Float64, torch.ScalarType.Float32, torch.ScalarType.Float16, torch.ScalarType.BFloat16,
        torch.ScalarType.Int64, torch.ScalarType.Int32, torch.ScalarType.Int16, torch.ScalarType.Int8,
        torch.ScalarType.Byte, torch.ScalarType.Bool,
    ];

    // HF's writer order, widest first (safetensors' Dtype enum, descending), restated here as the spec.
    private static readonly torch.ScalarType[] HfOrder =
    [
        torch.ScalarType.Int64, torch.ScalarType.Float64, torch.ScalarType.Float32, torch.ScalarType.Int32,
        torch.ScalarType.BFloat16, torch.ScalarType.Float16, torch.ScalarType.Int16, torch.ScalarType.Int8,
        torch.ScalarType.Byte, torch.ScalarType.Bool,
    ];

    private static readonly string[] NameParts =
        ["a", "b", "Z", "_", ".", "0", "lora_A", "é", "€", "😀", "\uFF5E", "\"", "\\", "\n", "\u0001", " "];

    private static readonly Gen<string> Name =
        Gen.Int[0, NameParts.Length - 1].Array[0, 4].Select(parts => string.Concat(parts.Select(i => NameParts[i])));

    // Rank 0 (scalars) to 4, dimensions 0 to 5: zero-size tensors included; HF's validate() accepts both.
    private static readonly Gen<long[]> Shape = Gen.Int[0, 5].Select(d => (long)d).Array[0, 4];

    private static readonly Gen<(string Name, int Dtype, long[] Shape, int Seed)> Tensor =
        Gen.Select(Name, Gen.Int[0, Dtypes.Length - 1], Shape, Gen.Int);

    private static readonly Gen<(string Key, string Value)[]?> Metadata =
        Gen.Select(Gen.Bool, Gen.Select(Name, Name).Array[0, 3]).Select(m => m.Item1 ? m.Item2 : null);

    // Chunk sizes: below one element, odd sizes that split elements across nothing (chunks hold whole
    // elements), and the production default.
    private static readonly Gen<int> ChunkBytes = Gen.OneOf(1, 3, 8, 20, 1 << 24);

    [Fact]
    public void Round_trip_is_bit_identical_for_random_tensors()
    {
        Gen.Select(Tensor.Array[0, 6], Metadata, ChunkBytes).Sample(sample =>
        {
            (var specs, var metadataPairs, int chunkBytes) = sample;
            var unique = specs.DistinctBy(s => s.Name, StringComparer.Ordinal).ToArray();
            OrderedDictionary<string, string>? metadata = metadataPairs is null ? null : new(StringComparer.Ordinal);
            foreach ((string key, string value) in metadataPairs ?? [])
            {
                metadata!.TryAdd(key, value);
            }

            var written = new List<(string Name, torch.ScalarType Dtype, long[] Shape, byte[] Bytes, torch.Tensor Tensor)>();
            try
            {
                foreach ((string name, int dtypeIndex, long[] shape, int seed) in unique)
                {
                    torch.ScalarType dtype = Dtypes[dtypeIndex];
                    byte[] bytes = RandomBytes(dtype, shape, seed);
                    written.Add((name, dtype, shape, bytes, TensorTestData.FromBytes(dtype, shape, bytes)));
                }

                using var directory = new TempDirectory();
                string path = directory.File("t.safetensors");
                SafetensorsFile.Write(path, written.Select(w => new KeyValuePair<string, torch.Tensor>(w.Name, w.Tensor)), metadata, chunkBytes);
                byte[] file = File.ReadAllBytes(path);

                // Layout facts of the format, checked on the raw bytes.
                ulong headerLength = SafetensorsBytes.HeaderLength(file);
                Assert.Equal(0UL, headerLength % 8);
                Assert.Equal(8 + (long)headerLength + written.Sum(w => (long)w.Bytes.Length), file.LongLength);

                using (SafetensorsContent content = SafetensorsFile.Read(path, chunkBytes))
                {
                    var expectedOrder = written
                        .OrderBy(w => Array.IndexOf(HfOrder, w.Dtype))
                        .ThenBy(w => Encoding.UTF8.GetBytes(w.Name), Utf8Order.Instance)
                        .Select(w => w.Name);
                    Assert.Equal(expectedOrder, content.Tensors.Keys);
                    foreach (var w in written)
                    {
                        torch.Tensor read = content.Tensors[w.Name];
                        Assert.Equal(w.Dtype, read.dtype);
                        Assert.Equal(w.Shape, read.shape);
                        Assert.Equal(w.Bytes, TensorTestData.Bytes(read));
                    }
                    if (metadata is null)
                    {
                        Assert.Null(content.Metadata);
                    }
                    else
                    {
                        Assert.Equal(metadata.ToArray(), content.Metadata!.ToArray());
                    }

                    string again = directory.File("again.safetensors");
                    SafetensorsFile.Write(again, content.Tensors, content.Metadata);
                    Assert.Equal(file, File.ReadAllBytes(again));
                }
            }
            finally
            {
                written.ForEach(w => w.Tensor.Dispose());
            }
        }, iter: 150, threads: 1);
    }

    private static byte[] RandomBytes(torch.ScalarType dtype, long[] shape, int seed)
    {
        long elements = shape.Aggregate(1L, (a, b) => a * b);
        int elementSize = dtype switch
        {
            torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
            torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
            torch.ScalarType.Float16 or torch.ScalarType.BFloat16 or torch.ScalarType.Int16 => 2,
            _ => 1,
        };
        var bytes = new byte[elements * elementSize];
        // Any bit pattern, NaN payloads and subnormals included: the format moves bytes, not numbers.
        new Random(seed).NextBytes(bytes);
        if (dtype == torch.ScalarType.Bool)
        {
            for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        }
        return bytes;
    }

    private sealed class Utf8Order : IComparer<byte[]>
    {
        public static readonly Utf8Order Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
