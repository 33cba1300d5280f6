using System.Text.Json.Nodes;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// `dora bench --model minilm --quick --json` in a child process: the records' structure and sanity (no timing
/// assertions: every variant and phase is there once, times are positive, medians are not below minima,
/// sentences/s is batch / median, peak RSS is measured and ordered as the models' sizes dictate).
/// </summary>
public sealed class MiniLmBenchTests
{
    [Fact]
    public async Task The_quick_MiniLM_bench_prints_one_sane_record_per_variant_shape_and_phase()
    {
        var (code, output, error) = await CliProcess.RunAsync(null, TimeSpan.FromMinutes(5),
            "bench", "--model", "minilm", "--quick", "--threads", "1", "--json");
        Assert.True(code == 0, error);
        var records = JsonNode.Parse(output)!.AsArray().Select(r => r!).ToList();

        var keys = records.Select(r => ((string)r["shape"]!, (string)r["phase"]!, (string)r["variant"]!)).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        var expected = new[] { "frozen", "lora", "dora", "full" }.Select(v => ("minilm-b2x16", "train", v))
            .Concat(new[] { 1, 2 }.SelectMany(b => new[] { "frozen", "dora" }.Select(v => ($"minilm-b{b}x16", "infer", v))));
        Assert.Equal(expected.OrderBy(k => k).ToList(), keys.OrderBy(k => k).ToList());

        foreach (var r in records)
        {
            double median = (double)r["median_ms"]!, min = (double)r["min_ms"]!;
            Assert.True(min > 0 && median >= min, $"{r.ToJsonString()}: times");
            Assert.Equal(16, (int)r["tokens"]!);
            Assert.Equal(8, (int)r["r"]!);
            Assert.Equal(1, (int)r["threads"]!);
            if ((string)r["phase"]! == "infer")
            {
                var batch = int.Parse(((string)r["shape"]!)["minilm-b".Length..].Split('x')[0]);
                Assert.Equal(batch / (median / 1000), (double)r["sentences_per_s"]!, 6);
                Assert.Null(r["peak_mb"]);
            }
            else
            {
                Assert.Null(r["sentences_per_s"]);
                Assert.True((double)r["peak_mb"]! > 50, $"{r.ToJsonString()}: a MiniLM process holds at least its 90 MB of weights");
            }
        }
        // Full fine-tuning keeps AdamW state for every encoder weight (2 × 90 MB): its peak is above frozen's.
        double Peak(string v) => (double)records.Single(r => (string)r["phase"]! == "train" && (string)r["variant"]! == v)["peak_mb"]!;
        Assert.True(Peak("full") > Peak("frozen") + 100, $"full {Peak("full")} MB vs frozen {Peak("frozen")} MB");
    }

    [Fact]
    public async Task An_empty_inference_batch_list_times_training_only()
    {
        // scripts/bench-vs-pytorch.sh relies on this to compare training steps alone.
        var (code, output, error) = await CliProcess.RunAsync(null, TimeSpan.FromMinutes(5),
            "bench", "--model", "minilm", "--quick", "--threads", "1", "--no-memory", "--infer-batches", "", "--json");
        Assert.True(code == 0, error);
        var records = JsonNode.Parse(output)!.AsArray().Select(r => r!).ToList();
        Assert.Equal(new[] { "dora", "frozen", "full", "lora" }, records.Select(r => (string)r["variant"]!).Order().ToArray());
        Assert.All(records, r => Assert.Equal("train", (string)r["phase"]!));
    }
}
