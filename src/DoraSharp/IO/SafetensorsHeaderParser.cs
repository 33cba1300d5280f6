using System.Globalization;
using System.Text.Json;
using System.Text.Unicode;

namespace DoraSharp.IO;

/// <summary>
/// Parses and validates a safetensors header against the size of the data buffer that follows it.
/// </summary>
/// <remarks>
/// The rules are Hugging Face's (<c>Metadata::validate</c> and <c>read_metadata</c> in the Rust crate), made
/// stricter where a hostile file could otherwise get ambiguous or unsafe behaviour:
/// <list type="bullet">
/// <item>The tensors, ordered by data offsets, must tile the buffer exactly: no gap, no overlap, no unused
/// trailing byte (HF: <c>InvalidOffset</c>, <c>MetadataIncompleteBuffer</c>).</item>
/// <item>Each tensor's byte count must equal product(shape) × dtype size, computed with overflow checks
/// (HF: <c>TensorInvalidInfo</c>, <c>ValidationOverflow</c>).</item>
/// <item>Duplicate keys are rejected at every level. serde, behind HF's reader, lets the last duplicate tensor
/// win; a file that means two things to two readers is exactly what an attacker wants.</item>
/// <item>Shape dimensions and offsets must be plain non-negative JSON integers no larger than 2^63-1 (TorchSharp
/// sizes are <c>long</c>), and product(max(dim, 1)) must fit a <c>long</c> too: libtorch computes strides from
/// that product and fails on a zero-size tensor such as [0, 2^62, 2^62] that HF would accept.</item>
/// <item><c>__metadata__</c> must be an object of strings (HF also accepts <c>null</c>, which no writer emits).</item>
/// <item>At most <see cref="MaxTensors"/> tensors (HF has no limit). Each tensor costs about 600 bytes of
/// TorchSharp/libtorch bookkeeping even when empty, against about 50 header bytes, so without a cap a
/// 100 MB header of empty tensors would make a load take over 1 GB.</item>
/// </list>
/// Unknown fields inside a tensor entry are ignored, as HF does. Nothing here allocates by a size the header
/// claims: the only allocations are proportional to the header bytes, which are really in the file.
/// </remarks>
internal static class SafetensorsHeaderParser
{
    /// <summary>HF's <c>MAX_HEADER_SIZE</c>: a longer header is rejected before it is read.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>
    /// The most tensors one file may hold: far above any adapter (LoRA on every linear layer of a
    /// 400B-parameter model is under 3,000 tensors) and shard, yet it bounds the per-tensor overhead.
    /// </summary>
    public const int MaxTensors = 100_000;

    /// <summary>The key of the free-form string map in the header.</summary>
    public const string MetadataKey = "__metadata__";

    // A valid header nests three deep (root object, tensor entry, shape array); anything much deeper is
    // invalid anyway, and a low limit keeps a hostile "[[[[..." from costing anything.
    private const int MaxJsonDepth = 8;

    /// <summary>
    /// Parses <paramref name="header"/> (the header bytes, padding included) and checks it against a data
    /// buffer of <paramref name="bufferLength"/> bytes.
    /// </summary>
    /// <exception cref="AdapterFormatException">The header is malformed or disagrees with the buffer.</exception>
    public static SafetensorsHeader Parse(string filePath, ReadOnlyMemory<byte> header, long bufferLength)
    {
        if (!Utf8.IsValid(header.Span))
        {
            throw Fail(filePath, $"the {header.Length}-byte header is not valid UTF-8");
        }
        CheckStartsWithObject(filePath, header.Span);

        var tensors = new List<SafetensorsTensorInfo>();
        IReadOnlyDictionary<string, string>? metadata = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = MaxJsonDepth });
        }
        catch (JsonException e)
        {
            throw Fail(filePath, $"the header is not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                string key = PropertyName(filePath, property, "a key of the header");
                if (!seen.Add(key))
                {
                    throw Fail(filePath, $"the header has the key {DisplayText.Quote(key)} more than once; each tensor name (and {MetadataKey}) must appear once");
                }
                if (key == MetadataKey)
                {
                    metadata = ParseMetadata(filePath, property.Value);
                }
                else
                {
                    if (tensors.Count == MaxTensors)
                    {
                        throw Fail(filePath, $"the header lists more than {MaxTensors} tensors, the most this reader accepts");
                    }
                    tensors.Add(ParseTensor(filePath, key, property.Value, bufferLength));
                }
            }
        }

        return new SafetensorsHeader(CheckCoverage(filePath, tensors, bufferLength), metadata);
    }

    private static void CheckStartsWithObject(string filePath, ReadOnlySpan<byte> header)
    {
        // serde_json skips JSON whitespace before the value; so do we, but nothing else (not a BOM).
        int start = header.IndexOfAnyExcept(" \t\r\n"u8);
        if (start < 0)
        {
            throw Fail(filePath, $"the {header.Length}-byte header is empty or blank; expected a JSON object");
        }
        if (header[start] != (byte)'{')
        {
            throw Fail(filePath, $"the header must be a JSON object starting with '{{', but it starts with byte 0x{header[start]:x2} at offset {start}");
        }
    }

    private static OrderedDictionary<string, string> ParseMetadata(string filePath, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Fail(filePath, $"{MetadataKey} must be a JSON object mapping strings to strings, found {Describe(value.ValueKind)}");
        }
        var metadata = new OrderedDictionary<string, string>(StringComparer.Ordinal);
        foreach (JsonProperty entry in value.EnumerateObject())
        {
            string key = PropertyName(filePath, entry, $"a key of {MetadataKey}");
            if (entry.Value.ValueKind != JsonValueKind.String)
            {
                throw Fail(filePath, $"{MetadataKey}[{DisplayText.Quote(key)}] must be a string, found {Describe(entry.Value.ValueKind)}");
            }
            string text = StringValue(filePath, entry.Value, $"{MetadataKey}[{DisplayText.Quote(key)}]");
            if (!metadata.TryAdd(key, text))
            {
                throw Fail(filePath, $"{MetadataKey} has the key {DisplayText.Quote(key)} more than once");
            }
        }
        return metadata;
    }

    private static SafetensorsTensorInfo ParseTensor(string filePath, string name, JsonElement value, long bufferLength)
    {
        string tensor = $"tensor {DisplayText.Quote(name)}";
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw Fail(filePath, $"{tensor}: expected a JSON object with dtype, shape and data_offsets, found {Describe(value.ValueKind)}");
        }

        JsonElement? dtypeElement = null, shapeElement = null, offsetsElement = null;
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty field in value.EnumerateObject())
        {
            string fieldName = PropertyName(filePath, field, $"a field of {tensor}");
            if (!fields.Add(fieldName))
            {
                throw Fail(filePath, $"{tensor}: the field {DisplayText.Quote(fieldName)} appears more than once");
            }
            switch (fieldName)
            {
                case "dtype": dtypeElement = field.Value; break;
                case "shape": shapeElement = field.Value; break;
                case "data_offsets": offsetsElement = field.Value; break;
                default: break; // HF ignores unknown fields; so do we.
            }
        }

        SafetensorsDtype dtype = ParseDtype(filePath, tensor, dtypeElement);
        long[] shape = ParseShape(filePath, tensor, shapeElement);
        (long begin, long end) = ParseOffsets(filePath, tensor, offsetsElement, bufferLength);

        long byteCount = ByteCount(filePath, tensor, dtype, shape);
        if (end - begin != byteCount)
        {
            throw Fail(filePath, $"{tensor}: data_offsets [{begin}, {end}] span {end - begin} bytes, but dtype {dtype.Name} and shape {FormatShape(shape)} need {byteCount} bytes");
        }
        return new SafetensorsTensorInfo(name, dtype, shape, begin, end);
    }

    private static SafetensorsDtype ParseDtype(string filePath, string tensor, JsonElement? element)
    {
        if (element is not { } value)
        {
            throw Fail(filePath, $"{tensor}: the field \"dtype\" is missing; expected a dtype name such as \"F32\"");
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw Fail(filePath, $"{tensor}: \"dtype\" must be a string such as \"F32\", found {Describe(value.ValueKind)}");
        }
        string name = StringValue(filePath, value, $"{tensor}: \"dtype\"");
        if (SafetensorsDtype.FromName(name) is { } dtype)
        {
            return dtype;
        }
        string kind = SafetensorsDtype.IsKnownButUnsupported(name) ? "is not supported" : "is not a safetensors dtype";
        throw Fail(filePath, $"{tensor}: dtype {DisplayText.Quote(name)} {kind}; supported dtypes: {SafetensorsDtype.SupportedNames}");
    }

    private static long[] ParseShape(string filePath, string tensor, JsonElement? element)
    {
        if (element is not { } value)
        {
            throw Fail(filePath, $"{tensor}: the field \"shape\" is missing; expected an array of non-negative integers");
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw Fail(filePath, $"{tensor}: \"shape\" must be an array of non-negative integers, found {Describe(value.ValueKind)}");
        }
        var shape = new long[value.GetArrayLength()];
        int index = 0;
        foreach (JsonElement dim in value.EnumerateArray())
        {
            shape[index] = NonNegativeInteger(filePath, tensor, $"shape[{index}]", dim);
            index++;
        }
        return shape;
    }

    private static (long Begin, long End) ParseOffsets(string filePath, string tensor, JsonElement? element, long bufferLength)
    {
        if (element is not { } value)
        {
            throw Fail(filePath, $"{tensor}: the field \"data_offsets\" is missing; expected [begin, end]");
        }
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() != 2)
        {
            string found = value.ValueKind == JsonValueKind.Array ? $"an array of {value.GetArrayLength()} elements" : Describe(value.ValueKind);
            throw Fail(filePath, $"{tensor}: \"data_offsets\" must be an array of two non-negative integers [begin, end], found {found}");
        }
        long begin = NonNegativeInteger(filePath, tensor, "data_offsets[0]", value[0]);
        long end = NonNegativeInteger(filePath, tensor, "data_offsets[1]", value[1]);
        if (begin > end)
        {
            throw Fail(filePath, $"{tensor}: data_offsets [{begin}, {end}] begin after they end; expected begin <= end");
        }
        if (end > bufferLength)
        {
            throw Fail(filePath, $"{tensor}: data_offsets [{begin}, {end}] reach past the end of the {bufferLength}-byte data buffer");
        }
        return (begin, end);
    }

    private static long NonNegativeInteger(string filePath, string tensor, string field, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Number)
        {
            throw Fail(filePath, $"{tensor}: {field} must be a non-negative integer, found {Describe(value.ValueKind)}");
        }
        // The raw token, not GetInt64: "4.0", "4e0" and "-0" are numbers JSON allows but not integers we accept.
        string raw = value.GetRawText();
        if (raw.StartsWith('-'))
        {
            throw Fail(filePath, $"{tensor}: {field} is {DisplayText.Quote(raw)}; expected a non-negative integer");
        }
        if (raw.AsSpan().ContainsAnyExceptInRange('0', '9'))
        {
            throw Fail(filePath, $"{tensor}: {field} is {DisplayText.Quote(raw)}, which is not an integer; expected a non-negative integer");
        }
        if (!long.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out long result))
        {
            throw Fail(filePath, $"{tensor}: {field} is {DisplayText.Quote(raw)}; expected a non-negative integer no larger than {long.MaxValue}");
        }
        return result;
    }

    private static long ByteCount(string filePath, string tensor, SafetensorsDtype dtype, long[] shape)
    {
        // product(max(dim, 1)) bounds both the element count and libtorch's strides; checking it left to
        // right overflows on the same shapes as HF's try_fold(checked_mul), plus zero-size ones libtorch rejects.
        long span = 1;
        foreach (long dim in shape)
        {
            if (long.MaxValue / Math.Max(dim, 1) < span)
            {
                throw Fail(filePath, $"{tensor}: shape {FormatShape(shape)} is too large: the product of its dimensions overflows a 64-bit count");
            }
            span *= Math.Max(dim, 1);
        }
        long elements = shape.Contains(0) ? 0 : span;
        if (long.MaxValue / dtype.Size < elements)
        {
            throw Fail(filePath, $"{tensor}: shape {FormatShape(shape)} of dtype {dtype.Name} takes more bytes than a 64-bit count holds (overflow)");
        }
        return elements * dtype.Size;
    }

    private static List<SafetensorsTensorInfo> CheckCoverage(string filePath, List<SafetensorsTensorInfo> tensors, long bufferLength)
    {
        // Sort by (begin, end) as HF does; header order breaks ties (several empty tensors at one offset)
        // so the result is deterministic.
        var order = tensors.Select((info, index) => (info, index)).ToList();
        order.Sort((a, b) =>
        {
            int byBegin = a.info.Begin.CompareTo(b.info.Begin);
            if (byBegin != 0) return byBegin;
            int byEnd = a.info.End.CompareTo(b.info.End);
            return byEnd != 0 ? byEnd : a.index.CompareTo(b.index);
        });

        long covered = 0;
        SafetensorsTensorInfo? previous = null;
        foreach ((SafetensorsTensorInfo info, _) in order)
        {
            if (info.Begin > covered)
            {
                throw Fail(filePath, $"bytes [{covered}, {info.Begin}) of the data buffer belong to no tensor (the gap ends where tensor {DisplayText.Quote(info.Name)} begins); the tensors must cover the buffer without gaps");
            }
            if (info.Begin < covered)
            {
                throw Fail(filePath, $"tensor {DisplayText.Quote(info.Name)} (data_offsets [{info.Begin}, {info.End}]) overlaps tensor {DisplayText.Quote(previous!.Name)} (data_offsets [{previous.Begin}, {previous.End}])");
            }
            covered = info.End;
            previous = info;
        }
        if (covered != bufferLength)
        {
            throw Fail(filePath, $"the data buffer has {bufferLength} bytes but the tensors cover only the first {covered}; the last {bufferLength - covered} bytes belong to no tensor (HF: MetadataIncompleteBuffer)");
        }
        return order.ConvertAll(entry => entry.info);
    }

    private static string PropertyName(string filePath, JsonProperty property, string what)
    {
        try
        {
            return property.Name;
        }
        catch (InvalidOperationException e)
        {
            // System.Text.Json decodes escapes lazily; an escaped lone surrogate ("\ud800") fails only here.
            throw Fail(filePath, $"{what} is not a valid Unicode string ({e.Message})", e);
        }
    }

    private static string StringValue(string filePath, JsonElement value, string what)
    {
        try
        {
            return value.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw Fail(filePath, $"{what} is not a valid Unicode string ({e.Message})", e);
        }
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    /// <summary>A shape as "[3, 5]" for messages; a hostile header's 10^6-dimension shape is cut.</summary>
    public static string FormatShape(IReadOnlyCollection<long> shape)
    {
        const int MaxDims = 12;
        string dims = string.Join(", ", shape.Take(MaxDims).Select(d => d.ToString(CultureInfo.InvariantCulture)));
        return shape.Count > MaxDims ? $"[{dims}, ... ({shape.Count} dimensions)]" : $"[{dims}]";
    }

    private static AdapterFormatException Fail(string filePath, string problem, Exception? inner = null) =>
        new(filePath, problem, inner);
}
