using TorchSharp;

namespace DoraSharp.IO;

/// <summary>
/// One element type of the safetensors format: its name in the header, its TorchSharp type, its size, and
/// its rank in Hugging Face's writer order.
/// </summary>
internal sealed class SafetensorsDtype
{
    private SafetensorsDtype(string name, torch.ScalarType scalarType, int size, int writerRank)
    {
        Name = name;
        ScalarType = scalarType;
        Size = size;
        WriterRank = writerRank;
    }

    /// <summary>The dtype's name in the header, e.g. "F32".</summary>
    public string Name { get; }

    /// <summary>The TorchSharp element type that holds this dtype's bytes unchanged.</summary>
    public torch.ScalarType ScalarType { get; }

    /// <summary>Bytes per element.</summary>
    public int Size { get; }

    /// <summary>
    /// The position of this dtype in the Rust crate's <c>Dtype</c> enum. Its writer sorts tensors by this,
    /// descending, then by name; matching that is what makes our files byte-identical to Python's.
    /// </summary>
    public int WriterRank { get; }

    // Ranks are the declaration order of `enum Dtype` in huggingface/safetensors (safetensors/src/tensor.rs):
    // BOOL, F4, F6_E2M3, F6_E3M2, U8, I8, F8_E5M2, F8_E4M3, F8_E8M0, F8_E4M3FNUZ, F8_E5M2FNUZ, I16, U16,
    // F16, BF16, I32, U32, F32, C64, F64, I64, U64. Only the relative order of the supported ones matters.
    private static readonly SafetensorsDtype[] Supported =
    [
        new("BOOL", torch.ScalarType.Bool, 1, 0),
        new("U8", torch.ScalarType.Byte, 1, 4),
        new("I8", torch.ScalarType.Int8, 1, 5),
        new("I16", torch.ScalarType.Int16, 2, 11),
        new("F16", torch.ScalarType.Float16, 2, 13),
        new("BF16", torch.ScalarType.BFloat16, 2, 14),
        new("I32", torch.ScalarType.Int32, 4, 15),
        new("F32", torch.ScalarType.Float32, 4, 17),
        new("F64", torch.ScalarType.Float64, 8, 19),
        new("I64", torch.ScalarType.Int64, 8, 20),
    ];

    // Dtypes the format defines but TorchSharp cannot hold (or we do not handle): a file using them is
    // well-formed, so the error says "not supported" rather than "unknown".
    private static readonly HashSet<string> KnownButUnsupported = new(StringComparer.Ordinal)
    {
        "F4", "F6_E2M3", "F6_E3M2", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ",
        "U16", "U32", "U64", "C64",
    };

    /// <summary>The names of the supported dtypes, for error messages.</summary>
    public static string SupportedNames { get; } = string.Join(", ", Supported.Select(d => d.Name));

    /// <summary>The dtype with header name <paramref name="name"/>, or null when it is not supported.</summary>
    public static SafetensorsDtype? FromName(string name) =>
        Array.Find(Supported, d => string.Equals(d.Name, name, StringComparison.Ordinal));

    /// <summary>True for dtype names the safetensors format defines but this library does not read.</summary>
    public static bool IsKnownButUnsupported(string name) => KnownButUnsupported.Contains(name);

    /// <summary>The dtype that stores TorchSharp <paramref name="scalarType"/>, or null when none does.</summary>
    public static SafetensorsDtype? FromScalarType(torch.ScalarType scalarType) =>
        Array.Find(Supported, d => d.ScalarType == scalarType);
}
