using System.CommandLine;
using Spectre.Console;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DoraSharp.Cli.Commands;

/// <summary>
/// `dora demo`: LoRA and DoRA on one Linear layer — outputs before and after a short fit, trainable
/// parameter counts, merged versus unmerged output. (The MNIST worked example replaces this as the
/// main job once it lands.)
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var seed = new Option<int>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 123 };
        var rank = new Option<int>("--r") { Description = "Adapter rank r.", DefaultValueFactory = _ => 4 };
        var alpha = new Option<double>("--alpha") { Description = "lora_alpha (scaling = alpha / r).", DefaultValueFactory = _ => 8 };
        var steps = new Option<int>("--steps") { Description = "Adam steps fitting the adapters.", DefaultValueFactory = _ => 300 };
        var command = new Command("demo", "LoRA and DoRA on one Linear layer: fit a target, compare, merge.") { seed, rank, alpha, steps };
        command.SetAction(p => Run(p.GetValue(seed), p.GetValue(rank), p.GetValue(alpha), p.GetValue(steps)));
        return command;
    }

    private static int Run(int seed, int r, double alpha, int steps)
    {
        if (r < 1) throw new UsageException($"--r must be >= 1 (got {r}).");
        if (steps < 1) throw new UsageException($"--steps must be >= 1 (got {steps}).");
        torch.manual_seed(seed);
        const int inFeatures = 32, outFeatures = 16, batch = 256;
        var pretrained = nn.Linear(inFeatures, outFeatures);
        // The "new task": the pretrained weight with each row rescaled and nudged by a rank-2 change, the kind of
        // update DoRA's magnitude/direction split is meant to capture.
        Tensor targetWeight;
        using (no_grad())
        {
            var rowScale = torch.rand(outFeatures, 1) + 0.5;
            var nudge = torch.randn(outFeatures, 2).matmul(torch.randn(2, inFeatures)) * 0.05;
            targetWeight = (pretrained.weight! * rowScale + nudge).detach();
        }
        var x = torch.randn(batch, inFeatures);
        var target = nn.functional.linear(x, targetWeight, pretrained.bias).detach();

        var table = new Table().Title("[bold]LoRA and DoRA on one Linear layer (32 → 16)[/]")
            .AddColumns("method", "trainable params", "% of layer", "MSE before", "MSE after", "max |merged − unmerged|");
        foreach (var dora in new[] { false, true })
        {
            var layer = nn.Linear(inFeatures, outFeatures);
            layer.load_state_dict(pretrained.state_dict());
            var adapter = new LoraLinear(layer, new LoraConfig { R = r, LoraAlpha = alpha, UseDora = dora, TargetModules = ["layer"] });
            var trainable = adapter.AdapterParameters().Sum(p => p.Parameter.numel());
            var total = adapter.parameters().Sum(p => p.numel());
            double Mse() { using var _ = NewDisposeScope(); using var ng = no_grad(); return nn.functional.mse_loss(adapter.call(x), target).item<float>(); }
            var before = Mse();
            var optimizer = torch.optim.Adam(adapter.AdapterParameters().Select(p => p.Parameter), lr: 0.01);
            adapter.train();
            for (var i = 0; i < steps; i++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                nn.functional.mse_loss(adapter.call(x), target).backward();
                optimizer.step();
            }
            adapter.eval();
            var after = Mse();
            double gap;
            using (no_grad())
            {
                var unmerged = adapter.call(x);
                adapter.Merge();
                gap = (adapter.call(x) - unmerged).abs().max().item<float>();
                adapter.Unmerge();
            }
            table.AddRow(dora ? "DoRA" : "LoRA", $"{trainable:N0}", $"{100.0 * trainable / total:F1} %", $"{before:E3}", $"{after:E3}", $"{gap:E1}");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("At initialisation both adapters leave the layer unchanged (B = 0), so 'MSE before' is the pretrained layer's error.");
        AnsiConsole.MarkupLine("DoRA trains one magnitude per output row besides A and B; merging folds everything into one weight.");
        return 0;
    }
}
