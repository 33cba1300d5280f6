using System.Globalization;
using System.Text;

namespace DoraSharp.IO;

/// <summary>
/// Serializes a safetensors header exactly as Hugging Face's Rust writer (serde_json, compact) does, so that
/// our files are byte-identical to the ones Python's <c>safetensors.torch.save_file</c> writes.
/// </summary>
/// <remarks>
/// serde_json output: no whitespace; <c>__metadata__</c> first (when present), then the tensors in the order
/// given; each entry's fields in the order dtype, shape, data_offsets; strings escaped only where JSON
/// requires it (quote, backslash, control characters; \b \t \n \f \r short forms, the rest as \u00xx with
/// lowercase hex), everything else written as raw UTF-8. System.Text.Json escapes non-ASCII and
/// HTML-sensitive characters by default, which is valid JSON but different bytes, hence this hand-written
/// writer. The result is padded with spaces to a multiple of 8 bytes, as HF pads it.
/// </remarks>
internal static class SafetensorsHeaderWriter
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// The header bytes, padded, for <paramref name="tensors"/> (already in file order, offsets assigned) and
    /// the optional <paramref name="metadata"/> (written in its enumeration order).
    /// </summary>
    /// <exception cref="EncoderFallbackException">A string is not valid UTF-16 (a lone surrogate).</exception>
    public static byte[] Serialize(IReadOnlyList<SafetensorsTensorInfo> tensors, IEnumerable<KeyValuePair<string, string>>? metadata)
    {
        var json = new StringBuilder(64 + 96 * tensors.Count);
        json.Append('{');
        bool first = true;
        if (metadata is not null)
        {
            AppendString(json, SafetensorsHeaderParser.MetadataKey);
            json.Append(":{");
            bool firstEntry = true;
            foreach ((string key, string value) in metadata)
            {
                if (!firstEntry) json.Append(',');
                firstEntry = false;
                AppendString(json, key);
                json.Append(':');
                AppendString(json, value);
            }
            json.Append('}');
            first = false;
        }
        foreach (SafetensorsTensorInfo tensor in tensors)
        {
            if (!first) json.Append(',');
            first = false;
            AppendString(json, tensor.Name);
            json.Append(":{\"dtype\":");
            AppendString(json, tensor.Dtype.Name);
            json.Append(",\"shape\":[");
            for (int i = 0; i < tensor.Shape.Length; i++)
            {
                if (i > 0) json.Append(',');
                json.Append(tensor.Shape[i].ToString(CultureInfo.InvariantCulture));
            }
            json.Append("],\"data_offsets\":[")
                .Append(tensor.Begin.ToString(CultureInfo.InvariantCulture))
                .Append(',')
                .Append(tensor.End.ToString(CultureInfo.InvariantCulture))
                .Append("]}");
        }
        json.Append('}');

        string text = json.ToString();
        int length = StrictUtf8.GetByteCount(text);
        var bytes = new byte[checked((length + 7) / 8 * 8)];
        StrictUtf8.GetBytes(text, bytes);
        bytes.AsSpan(length).Fill((byte)' ');
        return bytes;
    }

    private static void AppendString(StringBuilder json, string text)
    {
        json.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\b': json.Append("\\b"); break;
                case '\t': json.Append("\\t"); break;
                case '\n': json.Append("\\n"); break;
                case '\f': json.Append("\\f"); break;
                case '\r': json.Append("\\r"); break;
                case < ' ': json.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture)); break;
                default: json.Append(c); break;
            }
        }
        json.Append('"');
    }
}
