#:project ../src/DoraSharp/DoraSharp.csproj
#:package TorchSharp-cpu@0.107.0
#:property ManagePackageVersionsCentrally=false

// LoRA and DoRA, step by step, on one Linear layer.
//
//     dotnet run examples/lora_and_dora.cs        (from the repository root; the first run builds for ~20 s)
//
// Every quantity is computed twice: once by DoraSharp's LoraLinear layer, once by hand from the formulas,
// and the program checks that the two agree (it exits with code 1 if any check fails). The numbers are tiny
// (a 6 → 4 layer, rank 2) so that every matrix fits on the screen.
//
//   LoRA (Hu et al. 2021):    W' = W + s·B·A                          s = alpha / r
//   DoRA (Liu et al. 2024):   W' = m · (W + s·B·A) / ‖W + s·B·A‖       norm per output row, m trained
//
// (The repository's global package versions are managed centrally; the #:property line lets this single file
// name its own TorchSharp version, as a file-based program outside the repository would.)

using System.Globalization;
using DoraSharp;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var failures = 0;
torch.manual_seed(0);
using var noGrad = no_grad();   // sections 1–5 only look; section 6 turns gradients back on to train

// ── 1. A "pretrained" layer ────────────────────────────────────────────────────────────────────────────────
Section("1. The pretrained layer: y = x·Wᵀ + b, W is 4 × 6 (out × in)");
var pretrained = nn.Linear(6, 4);
var W = pretrained.weight!.detach().clone();
var b = pretrained.bias!.detach().clone();
Show("W", W);
Show("b", b);
var x = torch.randn(3, 6);   // three inputs to look at the outputs with

// ── 2. Magnitude and direction ─────────────────────────────────────────────────────────────────────────────
Section("2. DoRA's view of W: a magnitude per output row times a unit direction");
var m = W.norm(1, keepdim: true);                       // (4, 1): ‖W[i, :]‖, the length of each row
var V = W / m;                                         // (4, 6): each row scaled to length 1
Show("magnitude m = ‖W‖ per row", m.squeeze(1));
Show("direction V = W / m", V);
Show("‖V‖ per row (all 1)", V.norm(1));
Check("W = m · V", m * V, W);

// ── 3. LoRA ─────────────────────────────────────────────────────────────────────────────────────────────────
Section("3. LoRA: add a rank-2 update s·B·A, train only A and B");
var config = new LoraConfig { R = 2, LoraAlpha = 4, TargetModules = ["layer"] };    // s = alpha / r = 2
var lora = new LoraLinear(CopyOf(pretrained), config);
Console.WriteLine($"r = {config.R}, alpha = {config.LoraAlpha}, scaling s = alpha / r = {lora.Scaling}");
Show("A (r × in): Kaiming-uniform, as nn.Linear initialises weights", lora.LoraA);
Show("B (out × r): zeros", lora.LoraB);
Check("at initialisation (B = 0) the LoRA layer computes exactly the pretrained layer", lora.call(x), pretrained.call(x));

// Training would move B away from zero. To see an update without training, set B by hand.
lora.LoraB.copy_(torch.tensor(new float[] { 0.5f, -0.2f, 0.1f, 0.3f, -0.4f, 0.2f, 0.0f, 0.6f }, [4, 2]));
Show("B, as if after some training", lora.LoraB);
var deltaW = lora.Scaling * lora.LoraB.matmul(lora.LoraA);            // (4, 6), rank 2
Show("LoRA's update ΔW = s·B·A", deltaW);
Check("ΔW computed by the layer (DeltaWeight) = s·B·A", lora.DeltaWeight(), deltaW);
Check("LoRA output = x·(W + ΔW)ᵀ + b", lora.call(x), x.matmul((W + deltaW).T) + b);
Show("‖W + ΔW‖ per row: LoRA moved the magnitudes too", (W + deltaW).norm(1));

// ── 4. DoRA ─────────────────────────────────────────────────────────────────────────────────────────────────
Section("4. DoRA: the same low-rank update steers the direction; a trained magnitude sets the length");
var dora = new LoraLinear(CopyOf(pretrained), config with { UseDora = true });
Show("m, DoRA's trainable magnitude, starts as ‖W‖ per row", dora.Magnitude!);
Check("the initial magnitude is ‖W‖ per row", dora.Magnitude!, m.squeeze(1));
Check("at initialisation (B = 0) the DoRA layer computes exactly the pretrained layer", dora.call(x), pretrained.call(x));

dora.LoraA.copy_(lora.LoraA);
dora.LoraB.copy_(lora.LoraB);
var direction = (W + deltaW) / (W + deltaW).norm(1, keepdim: true);   // LoRA's weight, each row scaled to length 1
Check("with m unchanged, DoRA = ‖W‖ · (W + ΔW) / ‖W + ΔW‖", dora.call(x), x.matmul((m * direction).T) + b);

// Training would also move m. Set it by hand: rows 1 and 4 longer, row 2 shorter.
var trainedM = dora.Magnitude!.detach() * torch.tensor(new float[] { 1.5f, 0.5f, 1f, 2f });
dora.Magnitude!.copy_(trainedM);
Show("m, as if after some training", dora.Magnitude!);
var doraWeight = trainedM.unsqueeze(1) * direction;                    // W' = m · (W + ΔW) / ‖W + ΔW‖
Show("DoRA's weight W' = m · (W + s·B·A) / ‖W + s·B·A‖", doraWeight);
Show("DoRA's update W' − W", doraWeight - W);
Check("DoRA output = x·W'ᵀ + b", dora.call(x), x.matmul(doraWeight.T) + b);
Check("‖W'‖ per row is exactly m: the magnitude is its own parameter", doraWeight.norm(1), trainedM);
Check("W' / ‖W'‖ is LoRA's direction: B·A only steers", doraWeight / doraWeight.norm(1, keepdim: true), direction);

// ── 5. Merging ──────────────────────────────────────────────────────────────────────────────────────────────
Section("5. Merging folds the adapter into W: same outputs, no extra cost per call");
foreach (var (name, layer, expected) in new[] { ("LoRA", lora, W + deltaW), ("DoRA", dora, doraWeight) })
{
    var unmerged = layer.call(x);
    layer.Merge();
    var merged = layer.call(x);
    Show($"{name}: the merged weight", layer.Weight);
    Check($"{name}: merged weight = W'", layer.Weight, expected);
    Check($"{name}: merged output = unmerged output", merged, unmerged);
    layer.Unmerge();
    Check($"{name}: unmerging restores W", layer.Weight, W);
}

// ── 6. Training ─────────────────────────────────────────────────────────────────────────────────────────────
Section("6. Training: fit both to a new task (rows rescaled, plus a rank-1 nudge), only adapters learn");
var rowScale = torch.tensor(new float[] { 1.4f, 0.6f, 1.1f, 0.8f }).unsqueeze(1);
var targetW = W * rowScale + 0.1f * torch.randn(4, 1).matmul(torch.randn(1, 6));
var inputs = torch.randn(256, 6);
var targets = inputs.matmul(targetW.T) + b;
foreach (var useDora in new[] { false, true })
{
    torch.manual_seed(1);   // the same A for both
    var layer = new LoraLinear(CopyOf(pretrained), config with { UseDora = useDora });
    var trainable = layer.AdapterParameters().Select(p => p.Parameter).ToList();
    double Mse() => nn.functional.mse_loss(layer.call(inputs), targets).item<float>();
    var before = Mse();
    using (enable_grad())
    {
        var optimizer = torch.optim.Adam(trainable, lr: 0.02);
        for (var step = 0; step < 300; step++)
        {
            using var scope = NewDisposeScope();
            optimizer.zero_grad();
            nn.functional.mse_loss(layer.call(inputs), targets).backward();
            optimizer.step();
        }
    }
    var after = Mse();
    var count = trainable.Sum(p => p.numel());
    Console.WriteLine($"{(useDora ? "DoRA" : "LoRA")}: {count} trainable parameters (r·(in + out){(useDora ? " + out" : "")}), " +
                      $"MSE {before:0.00e+0} before, {after:0.00e+0} after 300 Adam steps");
    if (!(after < before / 10)) { failures++; Console.WriteLine("  FAILED: the error did not drop tenfold"); }
}

Console.WriteLine("DoRA can fit this task exactly: rescaling rows is what m does, and the nudge is rank 1. LoRA must express");
Console.WriteLine("the rescaling through B·A too, and a rank-4 change does not fit in rank 2.");
Console.WriteLine();
Console.WriteLine(failures == 0 ? "All checks passed." : $"{failures} check(s) FAILED.");
return failures == 0 ? 0 : 1;

// ── helpers ─────────────────────────────────────────────────────────────────────────────────────────────────

// A separate copy of the pretrained layer: an adapter freezes and shares its base layer's parameters.
static Linear CopyOf(Linear layer)
{
    var copy = nn.Linear(layer.in_features, layer.out_features);
    using (no_grad())
    {
        copy.weight!.copy_(layer.weight!);
        copy.bias!.copy_(layer.bias!);
    }
    return copy;
}

static void Section(string title)
{
    Console.WriteLine();
    Console.WriteLine(title);
    Console.WriteLine(new string('─', title.Length));
}

static void Show(string label, Tensor t)
{
    var values = t.detach().to(ScalarType.Float32);
    Console.WriteLine($"{label}:");
    if (values.dim() == 1) values = values.unsqueeze(0);
    for (var i = 0; i < values.shape[0]; i++)
        Console.WriteLine("  " + string.Join(" ", values[i].data<float>().ToArray().Select(v => v.ToString("+0.000;-0.000"))));
}

void Check(string claim, Tensor actual, Tensor expected)
{
    var gap = (actual.detach() - expected.detach()).abs().max().item<float>();
    var ok = gap <= 1e-5f;
    if (!ok) failures++;
    Console.WriteLine($"check: {claim}: {(ok ? "yes" : "NO")} (max difference {gap:0.0e+0})");
}
