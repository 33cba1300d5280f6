using System.Text;
using DoraSharp.IO;
using Xunit;

namespace DoraSharp.Tests.IO;

/// <summary>
/// One test per kind of malformed file: each is rejected with <see cref="AdapterFormatException"/> whose
/// message names the file, the offending tensor or field, and what was expected.
/// </summary>
public sealed class SafetensorsValidationTests : IDisposable
{
    private const string Entry16 = "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]";

    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private AdapterFormatException Rejected(byte[] file, params string[] fragments)
    {
        string path = _directory.File($"bad-{Guid.NewGuid():N}.safetensors");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<AdapterFormatException>(() => SafetensorsFile.Read(path).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        foreach (string fragment in fragments)
        {
            Assert.Contains(fragment, e.Message);
        }
        return e;
    }

    private AdapterFormatException Rejected(string header, int bufferLength, params string[] fragments) =>
        Rejected(SafetensorsBytes.Build(header, new byte[bufferLength]), fragments);

    [Fact]
    public void Accepts_the_minimal_valid_file_these_tests_mutate()
    {
        // The baseline: every rejection below differs from this file in one respect only.
        string path = _directory.File("good.safetensors");
        File.WriteAllBytes(path, SafetensorsBytes.Build("{\"t\":{" + Entry16 + "}}", new byte[16]));
        using SafetensorsContent content = SafetensorsFile.Read(path);
        Assert.Equal(["t"], content.Tensors.Keys);
        Assert.Equal(new long[] { 4 }, content.Tensors["t"].shape);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void Rejects_a_file_shorter_than_the_length_prefix(int length) =>
        Rejected(new byte[length], $"the file is {length} bytes long", "8-byte header length");

    [Fact]
    public void Rejects_a_header_length_beyond_the_file() =>
        Rejected(SafetensorsBytes.Build("{}", [], headerLength: 3), "says 3 bytes", "only 2 bytes follow");

    [Fact]
    public void Rejects_an_absurd_header_length_without_allocating_it()
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        Rejected(SafetensorsBytes.Build("{}", [], headerLength: 100_000_001), "100000001 bytes", "100000000-byte limit");
        Rejected(SafetensorsBytes.Build("{}", [], headerLength: ulong.MaxValue), $"{ulong.MaxValue} bytes", "limit");
        // Just under the cap: rejected by the file-size check, still before any buffer of that size exists.
        Rejected(SafetensorsBytes.Build("{}", [], headerLength: 99_999_999), "only 2 bytes follow");
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 10_000_000, "a header length must not be allocated before it is checked");
    }

    [Fact]
    public void Rejects_a_header_that_is_not_UTF8() =>
        Rejected(SafetensorsBytes.Build([(byte)'{', 0xff, (byte)'}'], []), "3-byte header is not valid UTF-8");

    [Theory]
    [InlineData("{\"t\":", "not valid JSON")]
    [InlineData("{\"t\":{" + Entry16 + "}} x", "not valid JSON")]
    [InlineData("{\"t\":{" + Entry16 + ",}}", "not valid JSON")]
    [InlineData("        ", "empty or blank")]
    public void Rejects_a_header_that_is_not_JSON(string header, string fragment) =>
        Rejected(header, 16, fragment);

    [Theory]
    [InlineData("[]", "byte 0x5b at offset 0")]
    [InlineData("  \"text\"", "byte 0x22 at offset 2")]
    [InlineData("\uFEFF{}", "byte 0xef at offset 0")]
    public void Rejects_a_header_that_is_not_an_object(string header, string fragment) =>
        Rejected(header, 0, "must be a JSON object", fragment);

    [Fact]
    public void Rejects_nesting_deeper_than_any_valid_header() =>
        Rejected("{\"t\":{\"x\":" + new string('[', 40) + new string(']', 40) + "," + Entry16 + "}}", 16, "not valid JSON", "depth");

    [Theory]
    [InlineData("[]", "an array")]
    [InlineData("\"F32\"", "a string")]
    [InlineData("null", "null")]
    public void Rejects_a_tensor_entry_that_is_not_an_object(string entry, string found) =>
        Rejected("{\"t\":" + entry + "}", 0, "tensor 't'", "expected a JSON object with dtype, shape and data_offsets", $"found {found}");

    [Theory]
    [InlineData("\"shape\":[4],\"data_offsets\":[0,16]", "\"dtype\" is missing")]
    [InlineData("\"dtype\":\"F32\",\"data_offsets\":[0,16]", "\"shape\" is missing")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[4]", "\"data_offsets\" is missing")]
    public void Rejects_a_tensor_entry_missing_a_field(string fields, string fragment) =>
        Rejected("{\"t\":{" + fields + "}}", 16, "tensor 't'", fragment);

    [Theory]
    [InlineData("\"dtype\":7,\"shape\":[4],\"data_offsets\":[0,16]", "\"dtype\" must be a string", "found a number")]
    [InlineData("\"dtype\":\"F32\",\"shape\":\"4\",\"data_offsets\":[0,16]", "\"shape\" must be an array", "found a string")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]", "shape[0] must be a non-negative integer", "found a string")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":{\"0\":16}", "\"data_offsets\" must be an array of two", "found an object")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16,32]", "\"data_offsets\" must be an array of two", "found an array of 3 elements")]
    [InlineData("\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,null]", "data_offsets[1] must be a non-negative integer", "found null")]
    public void Rejects_a_field_of_the_wrong_JSON_type(string fields, string fragment, string found) =>
        Rejected("{\"t\":{" + fields + "}}", 16, "tensor 't'", fragment, found);

    [Theory]
    [InlineData("-4", "is '-4'; expected a non-negative integer")]
    [InlineData("-0", "is '-0'; expected a non-negative integer")]
    [InlineData("4.0", "'4.0', which is not an integer")]
    [InlineData("4e0", "'4e0', which is not an integer")]
    [InlineData("9223372036854775808", "no larger than 9223372036854775807")]
    public void Rejects_a_negative_or_non_integer_dimension(string dim, string fragment) =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[" + dim + "],\"data_offsets\":[0,16]}}", 16, "tensor 't'", "shape[0]", fragment);

    [Fact]
    public void Rejects_an_unknown_dtype() =>
        Rejected("{\"t\":{\"dtype\":\"F99\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", "dtype 'F99' is not a safetensors dtype", "supported dtypes: BOOL, U8");

    [Theory]
    [InlineData("U16")]
    [InlineData("F8_E4M3")]
    [InlineData("C64")]
    public void Rejects_a_known_but_unsupported_dtype(string dtype) =>
        Rejected("{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", $"dtype '{dtype}' is not supported", "F32");

    [Fact]
    public void Rejects_offsets_that_begin_after_they_end() =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16,
            "tensor 't'", "data_offsets [16, 0] begin after they end");

    [Fact]
    public void Rejects_offsets_outside_the_buffer() =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16,
            "tensor 't'", "data_offsets [8, 24] reach past the end of the 16-byte data buffer");

    [Fact]
    public void Rejects_overlapping_tensors() =>
        Rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
            "tensor 'b' (data_offsets [8, 16]) overlaps tensor 'a' (data_offsets [0, 16])");

    [Fact]
    public void Rejects_two_tensors_sharing_the_same_bytes() =>
        Rejected("{\"a\":{" + Entry16 + "},\"b\":{" + Entry16 + "}}", 16, "tensor 'b'", "overlaps tensor 'a'");

    [Fact]
    public void Rejects_a_byte_count_that_disagrees_with_shape_and_dtype() =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", "span 16 bytes, but dtype F32 and shape [2, 3] need 24 bytes");

    [Theory]
    [InlineData("[4611686018427387904,4]")]            // 2^62 * 4 overflows before the dtype size is applied
    [InlineData("[4611686018427387904,4,0]")]          // HF's left-to-right product overflows before reaching 0
    [InlineData("[0,4611686018427387904,4611686018427387904]")] // zero elements, but libtorch's strides overflow
    public void Rejects_a_shape_whose_size_overflows(string shape) =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":" + shape + ",\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", "overflows a 64-bit count");

    [Fact]
    public void Rejects_a_byte_count_that_overflows_only_with_the_dtype_size() =>
        Rejected("{\"t\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", "dtype F64 takes more bytes than a 64-bit count holds");

    [Fact]
    public void Rejects_a_huge_shape_in_a_tiny_file_before_allocating_it() =>
        // 131072 x 131072 float32 would be 64 GiB; the byte-count check fires before any tensor exists.
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[131072,131072],\"data_offsets\":[0,16]}}", 16,
            "tensor 't'", "need 68719476736 bytes");

    [Fact]
    public void Rejects_duplicate_tensor_names()
    {
        // Even when the duplicate, taken alone, would describe a valid file: which one wins must not depend on the reader.
        string header = "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"t\":{" + Entry16 + "}}";
        Rejected(header, 16, "the key 't' more than once");
    }

    [Fact]
    public void Rejects_duplicate_names_spelled_differently_in_JSON() =>
        Rejected("{\"t\":{" + Entry16 + "},\"\\u0074\":{" + Entry16 + "}}", 16, "the key 't' more than once");

    [Fact]
    public void Rejects_a_duplicate_field_in_a_tensor_entry() =>
        Rejected("{\"t\":{" + Entry16 + ",\"dtype\":\"I32\"}}", 16, "tensor 't'", "the field 'dtype' appears more than once");

    [Fact]
    public void Rejects_a_duplicate_metadata_section_or_key()
    {
        Rejected("{\"__metadata__\":{},\"__metadata__\":{},\"t\":{" + Entry16 + "}}", 16, "the key '__metadata__' more than once");
        Rejected("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"t\":{" + Entry16 + "}}", 16, "__metadata__ has the key 'k' more than once");
    }

    [Fact]
    public void Rejects_a_gap_between_tensors() =>
        Rejected("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16,
            "bytes [4, 8) of the data buffer belong to no tensor", "tensor 'b' begins");

    [Fact]
    public void Rejects_a_gap_at_the_start() =>
        Rejected("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[4,16]}}", 16, "bytes [0, 4) of the data buffer belong to no tensor");

    [Fact]
    public void Rejects_unused_bytes_at_the_end_like_HF_MetadataIncompleteBuffer() =>
        Rejected("{\"t\":{" + Entry16 + "}}", 20, "the data buffer has 20 bytes but the tensors cover only the first 16", "MetadataIncompleteBuffer");

    [Fact]
    public void Rejects_a_buffer_with_bytes_but_no_tensors() =>
        Rejected("{}", 3, "the data buffer has 3 bytes but the tensors cover only the first 0");

    [Theory]
    [InlineData("[]", "must be a JSON object mapping strings to strings, found an array")]
    [InlineData("\"pt\"", "must be a JSON object mapping strings to strings, found a string")]
    [InlineData("null", "must be a JSON object mapping strings to strings, found null")]
    [InlineData("{\"format\":1}", "__metadata__['format'] must be a string, found a number")]
    [InlineData("{\"format\":{\"a\":\"b\"}}", "__metadata__['format'] must be a string, found an object")]
    public void Rejects_metadata_that_is_not_a_string_to_string_map(string metadata, string fragment) =>
        Rejected("{\"__metadata__\":" + metadata + ",\"t\":{" + Entry16 + "}}", 16, fragment);

    [Fact]
    public void Rejects_an_escaped_lone_surrogate_in_a_name() =>
        Rejected("{\"t\\ud800\":{" + Entry16 + "}}", 16, "a key of the header is not a valid Unicode string");

    [Fact]
    public void Rejects_more_tensors_than_the_cap()
    {
        // Rejected while parsing, before any tensor exists. (Loading 100,000 tensors to show the cap itself
        // is accepted would take seconds; the limit's value is pinned by the message instead.)
        string header = "{" + string.Join(",", Enumerable.Range(0, SafetensorsHeaderParser.MaxTensors + 1)
            .Select(i => $"\"t{i}\":{{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}")) + "}";
        Rejected(header, 0, "the header lists more than 100000 tensors");
    }

    [Fact]
    public void Rejects_a_bool_byte_other_than_0_or_1()
    {
        byte[] file = SafetensorsBytes.Build("{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}", [1, 0, 2]);
        Rejected(file, "tensor 'flags'", "element 2 of the BOOL tensor is byte 0x02; expected 0x00 or 0x01");
    }

    [Fact]
    public void Names_a_hostile_tensor_name_safely_in_messages()
    {
        string name = "line1\\nline2" + new string('x', 500);
        var e = Rejected("{\"" + name + "\":{\"dtype\":\"F99\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
            "'line1\\u000aline2xxx", "(cut; 511 characters in all)");
        Assert.DoesNotContain('\n', e.Message);
    }
}
