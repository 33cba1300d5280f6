#:project ../src/DoraSharp/DoraSharp.csproj
#:project ../src/DoraSharp.Examples/DoraSharp.Examples.csproj
#:package TorchSharp-cpu@0.107.0
#:property ManagePackageVersionsCentrally=false

// One pretrained model, two tasks, two named adapters — PEFT's add_adapter / set_adapter / modules_to_save /
// save_pretrained layout, in C#.
//
//     dotnet run examples/named_adapters.cs        (from the repository root; the first run builds for ~20 s)
//
// A small MLP is pretrained on the bundled upright MNIST digits. Then two adapters are added to it, each trained
// on its own task, each with its own copy of the classifier layer (modules_to_save):
//     "turned"   DoRA r=4 on layers.0 and layers.2, digits turned 90°
//     "flipped"  LoRA r=4 on layers.0 and layers.2, digits turned 180° (upside down)
// The program switches between them, disables them, saves both in PEFT's layout, loads them back onto a fresh
// copy of the base model, and checks every claim it prints (it exits with code 1 if any check fails).

using System.Globalization;
using DoraSharp;
using DoraSharp.Examples.Data;
using DoraSharp.Examples.Experiments;
using DoraSharp.Training;
using TorchSharp;

CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
var failures = 0;
void Check(string claim, bool holds, string detail)
{
    Console.WriteLine($"check: {claim}: {(holds ? "yes" : "NO")} ({detail})");
    if (!holds) failures++;
}

var dataDir = Path.Combine("data", "mnist");
if (!Directory.Exists(dataDir))
{
    Console.Error.WriteLine($"{Path.GetFullPath(dataDir)} not found: run this from the repository root.");
    return 2;
}
using var train = DatasetCatalog.Load("mnist", dataDir, train: true);
using var test = DatasetCatalog.Load("mnist", dataDir, train: false);
var tasks = new[] { ("upright", 0), ("turned 90°", 1), ("upside down", 2) }
    .Select(t => (Name: t.Item1, Train: ImageTransforms.Rotate(train, t.Item2), Test: ImageTransforms.Rotate(test, t.Item2)))
    .ToArray();
TrainerOptions Options(ulong seed) => new() { Epochs = 1, BatchSize = 64, LearningRate = 0.005, Seed = seed };

// ── 1. Pretrain on upright digits ─────────────────────────────────────────────────────────────────────────────
torch.manual_seed(123);
var model = new MnistMlp();
using (var trainer = new Trainer(model, model.parameters(), Options(1))) trainer.Fit(tasks[0].Train);
using var pretrained = model.Copy();   // kept aside: the base model a user would ship

// ── 2. Two named adapters, each with its own copy of the classifier ───────────────────────────────────────────
var lora = LoraModel.Wrap(model, new LoraConfig
{
    R = 4, LoraAlpha = 8, UseDora = true, TargetModules = ["layers.0", "layers.2"], ModulesToSave = ["layers.4"],
}, adapterName: "turned");
lora.AddAdapter("flipped", new LoraConfig { R = 4, LoraAlpha = 8, TargetModules = ["layers.0", "layers.2"], ModulesToSave = ["layers.4"] });
Console.WriteLine($"adapters: {string.Join(", ", lora.AdapterNames)}; active: {lora.ActiveAdapter}");

foreach (var (name, task, seed) in new[] { ("turned", tasks[1], 2UL), ("flipped", tasks[2], 3UL) })
{
    lora.SetAdapter(name);   // only this adapter (and its classifier copy) is in the model and trains
    Console.WriteLine($"training '{name}' on {task.Name} digits: {lora.CountParameters()}");
    using var trainer = new Trainer(model, lora.TrainableParameters(), Options(seed));
    trainer.Fit(task.Train);
}

// ── 3. Each adapter on each task ──────────────────────────────────────────────────────────────────────────────
long[] Correct() => tasks.Select(t => Evaluator.Evaluate(model, t.Test).Correct).ToArray();
string Row(string label, long[] correct) =>
    $"{label,-22}" + string.Concat(correct.Select(c => $"{100.0 * c / test.Count,14:0.00} %"));
model.eval();
var results = new Dictionary<string, long[]>();
using (lora.DisableAdapters()) results["adapters disabled"] = Correct();
foreach (var name in lora.AdapterNames)
{
    lora.SetAdapter(name);
    results[name] = Correct();
}
Console.WriteLine();
Console.WriteLine($"{"test accuracy",-22}" + string.Concat(tasks.Select(t => $"{t.Name,16}")));
foreach (var (label, correct) in results) Console.WriteLine(Row(label, correct));
var baseCorrect = tasks.Select(t => Evaluator.Evaluate(pretrained, t.Test).Correct).ToArray();
Console.WriteLine(Row("pretrained base", baseCorrect));
Console.WriteLine();

Check("with adapters disabled the model is the pretrained base", results["adapters disabled"].SequenceEqual(baseCorrect),
    $"{string.Join("/", results["adapters disabled"])} vs {string.Join("/", baseCorrect)} correct");
Check("'turned' is the best model on turned digits", results["turned"][1] > results["flipped"][1] && results["turned"][1] > baseCorrect[1],
    $"{results["turned"][1]} vs {results["flipped"][1]} and {baseCorrect[1]}");
Check("'flipped' is the best model on upside-down digits", results["flipped"][2] > results["turned"][2] && results["flipped"][2] > baseCorrect[2],
    $"{results["flipped"][2]} vs {results["turned"][2]} and {baseCorrect[2]}");
lora.SetAdapter("turned");
Check("switching back to 'turned' gives its results again", Correct().SequenceEqual(results["turned"]),
    string.Join("/", results["turned"]));

// ── 4. Save in PEFT's layout, load back onto a fresh copy of the base ─────────────────────────────────────────
var dir = Path.Combine(Path.GetTempPath(), $"dorasharp-named-adapters-{Environment.ProcessId}");
lora.SaveAdapter(dir);   // no adapter is named "default", so each goes into a sub-folder named after it (PEFT)
var files = Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(dir, f)).Order().ToList();
Console.WriteLine($"saved {dir}:");
foreach (var f in files) Console.WriteLine($"    {f}");
Check("PEFT's layout: one sub-folder per adapter",
    files.SequenceEqual(["flipped/adapter_config.json", "flipped/adapter_model.safetensors", "turned/adapter_config.json", "turned/adapter_model.safetensors"]),
    $"{files.Count} files");

var fresh = pretrained.Copy();
var loaded = LoraModel.LoadAdapter(fresh, Path.Combine(dir, "turned"), adapterName: "turned");   // PeftModel.from_pretrained
loaded.LoadAdapter(Path.Combine(dir, "flipped"), "flipped");                                     // model.load_adapter
foreach (var name in loaded.AdapterNames)
{
    loaded.SetAdapter(name);
    var again = tasks.Select(t => Evaluator.Evaluate(fresh, t.Test).Correct).ToArray();
    Check($"'{name}' loaded from disk gives the same results", again.SequenceEqual(results[name]), string.Join("/", again));
}
Directory.Delete(dir, recursive: true);

Console.WriteLine(failures == 0 ? "All checks passed." : $"{failures} check(s) FAILED.");
return failures == 0 ? 0 : 1;
