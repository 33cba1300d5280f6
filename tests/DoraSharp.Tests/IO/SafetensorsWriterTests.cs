using System.Text;
using DoraSharp.IO;
using Xunit;
using TorchSharp;

namespace DoraSharp.Tests.IO;

/// <summary>
/// The writer's bytes, against known answers: vectors from Hugging Face's own Rust tests
/// (safetensors/src/tensor.rs: test_serialization, test_serialization_forced_alignement, test_empty) and
/// headers written out by hand from serde_json's escaping rules and HF's sort rule.
/// </summary>
public sealed class SafetensorsWriterTests
{
    private static byte[] WriteToBytes(IEnumerable<KeyValuePair<string, torch.Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var directory = new TempDirectory();
        string path = directory.File("out.safetensors");
        SafetensorsFile.Write(path, tensors, metadata);
        return File.ReadAllBytes(path);
    }

    private static byte[] Expected(string header, byte[] buffer) => SafetensorsBytes.Build(header, buffer);

    private static byte[] Float32Bytes(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public void Matches_HF_test_serialization()
    {
        using torch.Tensor tensor = torch.arange(0, 6, dtype: torch.ScalarType.Float32).reshape(1, 2, 3);
        byte[] actual = WriteToBytes([new("attn.0", tensor)]);
        // 64 bytes of JSON: already a multiple of 8, so no padding.
        byte[] expected = Expected("""{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}""", Float32Bytes(0, 1, 2, 3, 4, 5));
        Assert.Equal(64UL, SafetensorsBytes.HeaderLength(expected));
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Matches_HF_test_serialization_forced_alignment()
    {
        using torch.Tensor tensor = torch.arange(0, 6, dtype: torch.ScalarType.Float32).reshape(1, 1, 2, 3);
        byte[] actual = WriteToBytes([new("attn0", tensor)]);
        // 65 bytes of JSON, padded with 7 spaces to 72.
        byte[] expected = Expected("""{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}       """, Float32Bytes(0, 1, 2, 3, 4, 5));
        Assert.Equal(72UL, SafetensorsBytes.HeaderLength(expected));
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Matches_HF_test_empty_without_and_with_metadata()
    {
        byte[] empty = Expected("{}      ", []);
        Assert.Equal(8UL, SafetensorsBytes.HeaderLength(empty));
        Assert.Equal(empty, WriteToBytes([]));
        byte[] withMetadata = Expected("""{"__metadata__":{"framework":"pt"}}     """, []);
        Assert.Equal(40UL, SafetensorsBytes.HeaderLength(withMetadata));
        Assert.Equal(withMetadata, WriteToBytes([], new Dictionary<string, string> { ["framework"] = "pt" }));
    }

    [Fact]
    public void Empty_metadata_map_is_written_and_null_metadata_is_not()
    {
        Assert.Equal(Expected("""{"__metadata__":{}}     """, []), WriteToBytes([], new Dictionary<string, string>()));
        Assert.Equal(Expected("{}      ", []), WriteToBytes([], null));
    }

    [Fact]
    public void Escapes_strings_as_serde_json_does()
    {
        using torch.Tensor tensor = torch.zeros(1, dtype: torch.ScalarType.Byte);
        // Quote, backslash, the five short escapes, other controls as lowercase \u00xx; DEL, '/', '<', '+'
        // and non-ASCII stay raw (System.Text.Json's default encoder would escape several of these).
        string name = "q\"b\\\b\t\n\f\r\u0001\u001f\u007f/<+é€😀";
        byte[] actual = WriteToBytes([new(name, tensor)], new Dictionary<string, string> { ["k\u000b"] = "v\"" });

        string json = "{\"__metadata__\":{\"k\\u000b\":\"v\\\"\"},"
            + "\"q\\\"b\\\\\\b\\t\\n\\f\\r\\u0001\\u001f\u007f/<+é€😀\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
        int length = Encoding.UTF8.GetByteCount(json);
        string padded = json + new string(' ', (8 - length % 8) % 8);
        Assert.Equal(Expected(padded, [0]), actual);
    }

    [Fact]
    public void Orders_tensors_by_dtype_widest_first_then_by_utf8_name()
    {
        // HF's Dtype enum order (descending): I64, F64, F32, I32, BF16, F16, I16, I8, U8, BOOL.
        // Names compare as UTF-8 bytes: "Z" < "a" < "\uFF5E" (EF BD 9E) < "😀" (F0 9F 98 80), although in
        // UTF-16 the emoji's surrogate (D83D) sorts before FF5E.
        var tensors = new (string Name, torch.ScalarType Dtype)[]
        {
            ("b", torch.ScalarType.Bool), ("u", torch.ScalarType.Byte), ("i8", torch.ScalarType.Int8),
            ("i16", torch.ScalarType.Int16), ("h", torch.ScalarType.Float16), ("bf", torch.ScalarType.BFloat16),
            ("i32", torch.ScalarType.Int32), ("😀", torch.ScalarType.Float32), ("\uFF5E", torch.ScalarType.Float32),
            ("a", torch.ScalarType.Float32), ("Z", torch.ScalarType.Float32), ("d", torch.ScalarType.Float64),
            ("l", torch.ScalarType.Int64),
        };
        var created = tensors.Select(t => new KeyValuePair<string, torch.Tensor>(t.Name, torch.zeros(1, dtype: t.Dtype))).ToList();
        try
        {
            byte[] actual = WriteToBytes(created);

            string json = "{"
                + "\"l\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[8,16]},"
                + "\"Z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]},"
                + "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[20,24]},"
                + "\"\uFF5E\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]},"
                + "\"😀\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[28,32]},"
                + "\"i32\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[32,36]},"
                + "\"bf\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[36,38]},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[38,40]},"
                + "\"i16\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[40,42]},"
                + "\"i8\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[42,43]},"
                + "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[43,44]},"
                + "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[44,45]}"
                + "}";
            int length = Encoding.UTF8.GetByteCount(json);
            string padded = json + new string(' ', (8 - length % 8) % 8);
            Assert.Equal(Expected(padded, new byte[45]), actual);
        }
        finally
        {
            created.ForEach(kv => kv.Value.Dispose());
        }
    }

    [Fact]
    public void Writes_non_contiguous_tensors_in_logical_order()
    {
        using torch.Tensor matrix = torch.arange(0, 6, dtype: torch.ScalarType.Float32).reshape(2, 3);
        using torch.Tensor transposed = matrix.t();
        byte[] actual = WriteToBytes([new("t", transposed)]);
        byte[] expected = Expected("""{"t":{"dtype":"F32","shape":[3,2],"data_offsets":[0,24]}}       """, Float32Bytes(0, 3, 1, 4, 2, 5));
        Assert.Equal(expected, actual);
    }

    [Fact]
    public void Rejects_an_unsupported_dtype_naming_tensor_and_dtype_and_writes_nothing()
    {
        using var directory = new TempDirectory();
        using torch.Tensor complex = torch.zeros(2, dtype: torch.ScalarType.ComplexFloat32);
        var e = Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(directory.File("x.safetensors"), [new("my_complex", complex)]));
        Assert.Contains("'my_complex'", e.Message);
        Assert.Contains("ComplexFloat32", e.Message);
        Assert.Empty(directory.Entries());
    }

    [Fact]
    public void Rejects_duplicate_reserved_and_invalid_utf16_names()
    {
        using var directory = new TempDirectory();
        string path = directory.File("x.safetensors");
        using torch.Tensor tensor = torch.zeros(1);

        var duplicate = Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("w", tensor), new("w", tensor)]));
        Assert.Contains("'w' appears more than once", duplicate.Message);
        var reserved = Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("__metadata__", tensor)]));
        Assert.Contains("__metadata__", reserved.Message);
        var surrogate = Assert.Throws<ArgumentException>(() => SafetensorsFile.Write(path, [new("bad\uD800", tensor)]));
        Assert.Contains("lone surrogate", surrogate.Message);
        var metadataSurrogate = Assert.Throws<ArgumentException>(() =>
            SafetensorsFile.Write(path, [new("w", tensor)], new Dictionary<string, string> { ["k"] = "\uDC00" }));
        Assert.Contains("metadata value of 'k'", metadataSurrogate.Message);
        Assert.Empty(directory.Entries());
    }
}
