using System.Text.Json.Nodes;
using DoraSharp.Analysis;
using DoraSharp.Examples.Experiments;
using DoraSharp.Tests.IO;
using Xunit;

namespace DoraSharp.Tests.Examples.Experiments;

public sealed class DecompositionFileTests
{
    private static DecompositionResult Result() => new(
        new ExperimentSettings { Seed = 7 },
        new DataSummary("mnist", ExperimentTask.Shift, "turned", 10, 5, "train", "test"),
        Rank: 4, Alpha: 8, Checkpoints: 2,
        [
            new DecompositionPoint("LoRA", "layers.0", 1, 5, 0.1, 0.2),
            new DecompositionPoint("LoRA", "layers.0", 2, 10, 0.3, 0.6),   // ΔM = 2·ΔD: slope 2, r = 1
        ]);

    [Fact]
    public void Csv_has_one_row_per_point()
    {
        using var temp = new TempDirectory();
        var path = Path.Combine(temp.Path, "d.csv");
        DecompositionFile.WriteCsv(path, Result());
        Assert.Equal(
            ["method,layer,checkpoint,step,delta_d,delta_m", "LoRA,layers.0,1,5,0.1,0.2", "LoRA,layers.0,2,10,0.3,0.6"],
            File.ReadAllLines(path));
    }

    [Fact]
    public void Json_holds_settings_fits_and_points_with_undefined_fits_as_null()
    {
        using var temp = new TempDirectory();
        var path = Path.Combine(temp.Path, "d.json");
        DecompositionFile.WriteJson(path, Result());
        var json = JsonNode.Parse(File.ReadAllText(path))!;
        Assert.Equal(7, (long)json["seed"]!);
        Assert.Equal(4, (int)json["r"]!);
        Assert.Equal(2.0, (double)json["fits"]!["LoRA"]!["slope"]!, 12);
        Assert.Equal(1.0, (double)json["fits"]!["LoRA"]!["pearson"]!, 12);
        Assert.Null(json["fits"]!["DoRA"]!["slope"]);   // no DoRA points: no fit
        Assert.Equal(2, json["points"]!.AsArray().Count);
        Assert.Equal("layers.0", (string)json["points"]![1]!["layer"]!);
    }
}
