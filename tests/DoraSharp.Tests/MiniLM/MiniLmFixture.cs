using DoraSharp.MiniLM;
using DoraSharp.MiniLM.Reference;
using Xunit;

namespace DoraSharp.Tests.MiniLM;

/// <summary>
/// Loads the pretrained encoder, the tokenizer and an ONNX Runtime session once for every MiniLM test, with
/// two threads, as the machine allows.
/// </summary>
public sealed class MiniLmFixture : IDisposable
{
    public MiniLmFixture()
    {
        TorchSharp.torch.set_num_threads(2);
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
