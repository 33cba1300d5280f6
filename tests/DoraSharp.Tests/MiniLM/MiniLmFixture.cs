using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Reference;
using Xunit;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// Loads the pretrained encoder, the tokenizer and an ONNX Runtime session (two threads) once for every MiniLM test.
/// It leaves libtorch's thread count alone: that setting is process-wide and other tests run beside these.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public MiniLmFixture()
    {
        Model = MiniLmWeights.LoadPretrained(out var report);
        LoadReport = report;
        Tokenizer = MiniLmTokenizer.FromPackage();
        Ort = new OnnxMiniLm(threads: 2);
    }

    public BertEncoder Model { get; }
    public MiniLmLoadReport LoadReport { get; }
    public MiniLmTokenizer Tokenizer { get; }
    public OnnxMiniLm Ort { get; }

    public void Dispose()
    {
        Model.Dispose();
        Ort.Dispose();
    }
}

/// <summary>The MiniLM tests share one fixture and run one at a time (they are the heavy ones).</summary>
[CollectionDefinition(Name)]
public sealed class MiniLmCollection : ICollectionFixture<MiniLmFixture>
{
    public const string Name = "MiniLM";
}
