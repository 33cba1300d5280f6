using DoraSharp.IO;
using Xunit;
using TorchSharp;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Files written by Python (PyTorch 2.6, Hugging Face safetensors via PEFT; see /work/shared/golden/README.md):
/// we read them correctly, and writing their tensors back gives the very same bytes.
/// </summary>
public sealed class SafetensorsGoldenTests
{
    private const string LinearDora = "linear_dora_f32_3x5_r1_bias.safetensors";
    private const string EmbeddingDora = "embedding_dora_f64_20x8_r1.safetensors";
    private const string PeftAdapter = "peft_adapter_mlp_adapter_model.safetensors";

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "IO", "Fixtures", name);

    [Fact]
    public void Reads_a_float32_case_file_in_file_order_with_its_metadata()
    {
        using SafetensorsContent content = SafetensorsFile.Read(Fixture(LinearDora));

        // Names, order and shapes as in the file's header (HF writes same-dtype tensors sorted by name).
        string[] expectedNames =
        [
            "W", "bias", "grad_lora_A", "grad_lora_B", "grad_magnitude", "grad_out", "grad_x",
            "lora_A", "lora_B", "magnitude", "magnitude_init", "merged_weight", "x", "y",
        ];
        Assert.Equal(expectedNames, content.Tensors.Keys);
        Assert.All(content.Tensors.Values, t => Assert.Equal(torch.ScalarType.Float32, t.dtype));
        Assert.All(content.Tensors.Values, t => Assert.Equal(DeviceType.CPU, t.device_type));
        Assert.Equal(new long[] { 3, 5 }, content.Tensors["W"].shape);
        Assert.Equal(new long[] { 4, 3 }, content.Tensors["grad_out"].shape);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, content.Metadata);

        // Values decoded from the file's bytes with Python's struct module.
        float[] w = TensorTestData.Values<float>(content.Tensors["W"]);
        Assert.Equal(-0.4788614809513092f, w[0]);
        Assert.Equal(-0.7475295662879944f, w[1]);
        Assert.Equal(-0.24408940970897675f, w[14]);
        Assert.Equal(new[] { 0.0525401271879673f, -0.13402707874774933f, -0.053398557007312775f }, TensorTestData.Values<float>(content.Tensors["bias"]));
    }

    [Fact]
    public void Reads_mixed_int64_and_float64_tensors_widest_dtype_first()
    {
        using SafetensorsContent content = SafetensorsFile.Read(Fixture(EmbeddingDora));

        // HF orders I64 before F64 (its Dtype enum puts I64 after F64 and sorts descending).
        Assert.Equal("x", content.Tensors.GetAt(0).Key);
        Assert.Equal("W", content.Tensors.GetAt(1).Key);
        Assert.Equal(torch.ScalarType.Int64, content.Tensors["x"].dtype);
        Assert.Equal(new long[] { 3, 19, 16, 16, 17, 5, 4, 8, 10, 19, 10 }, TensorTestData.Values<long>(content.Tensors["x"]));
        Assert.Equal(torch.ScalarType.Float64, content.Tensors["W"].dtype);
        Assert.Equal(new long[] { 20, 8 }, content.Tensors["W"].shape);
        double[] w = TensorTestData.Values<double>(content.Tensors["W"]);
        Assert.Equal(-0.9249718664694705, w[0]);
        Assert.Equal(0.40799847021175306, w[^1]);
    }

    [Fact]
    public void Reads_a_PEFT_adapter_file()
    {
        using SafetensorsContent content = SafetensorsFile.Read(Fixture(PeftAdapter));

        var expectedShapes = new (string Name, long[] Shape)[]
        {
            ("base_model.model.layers.0.lora_A.weight", [4, 784]),
            ("base_model.model.layers.0.lora_B.weight", [32, 4]),
            ("base_model.model.layers.0.lora_magnitude_vector", [32]),
            ("base_model.model.layers.2.lora_A.weight", [4, 32]),
            ("base_model.model.layers.2.lora_B.weight", [64, 4]),
            ("base_model.model.layers.2.lora_magnitude_vector", [64]),
            ("base_model.model.layers.4.lora_A.weight", [4, 64]),
            ("base_model.model.layers.4.lora_B.weight", [10, 4]),
            ("base_model.model.layers.4.lora_magnitude_vector", [10]),
        };
        Assert.Equal(expectedShapes.Select(e => e.Name), content.Tensors.Keys);
        foreach ((string name, long[] shape) in expectedShapes)
        {
            Assert.Equal(shape, content.Tensors[name].shape);
        }
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, content.Metadata);
        float[] a0 = TensorTestData.Values<float>(content.Tensors["base_model.model.layers.0.lora_A.weight"]);
        Assert.Equal(-0.006208573933690786f, a0[0]);
        Assert.Equal(-0.01936347410082817f, a0[^1]);
        float[] magnitude4 = TensorTestData.Values<float>(content.Tensors["base_model.model.layers.4.lora_magnitude_vector"]);
        Assert.Equal(0.7554989457130432f, magnitude4[0]);
        Assert.Equal(0.6376988291740417f, magnitude4[9]);
    }

    [Theory]
    [InlineData(LinearDora)]
    [InlineData(EmbeddingDora)]
    [InlineData(PeftAdapter)]
    public void Writing_back_what_was_read_reproduces_Pythons_bytes(string fixture)
    {
        byte[] python = File.ReadAllBytes(Fixture(fixture));
        using var directory = new TempDirectory();
        string copy = directory.File("copy.safetensors");

        using (SafetensorsContent content = SafetensorsFile.Read(Fixture(fixture)))
        {
            // Hand the tensors over in reverse order: the writer must sort them as HF does.
            SafetensorsFile.Write(copy, content.Tensors.Reverse(), content.Metadata);
        }

        Assert.Equal(python, File.ReadAllBytes(copy));
    }
}
