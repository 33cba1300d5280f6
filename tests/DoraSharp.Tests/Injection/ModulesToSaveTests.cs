using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>LoraConfig.ModulesToSave: PEFT's modules_to_save (ModulesToSaveWrapper) in memory.</summary>
[Collection(SeededRuns.Name)]
public sealed class ModulesToSaveTests
{
    // LoRA on every Linear, but heads.b (a new head, say) is trained in full.
    private static readonly LoraConfig WithHead = new() { R = 2, LoraAlpha = 4, TargetModulesRegex = ".*", ModulesToSave = ["heads.b"] };

    private static void Step(LoraModel lora, Tensor x)
    {
        var optimizer = optim.SGD(lora.TrainableParameters(), 0.05);
        ((nn.Module<Tensor, Tensor>)lora.Model).call(x).square().sum().backward();
        optimizer.step();
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module module)
        => module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());

    [Fact]
    public void The_module_trains_in_full_beside_the_adapters_and_gets_no_adapter_itself()
    {
        torch.manual_seed(3);
        var model = new ContainerNet();
        var head = NamedAdapterTests.ModuleAt(model, "heads.b");
        var lora = LoraModel.Wrap(model, WithHead);

        Assert.Equal(["heads.b"], lora.ModulesToSave);
        Assert.Same(head, NamedAdapterTests.ModuleAt(model, "heads.b")); // still the same module, keys unchanged
        Assert.IsType<Linear>(head);
        Assert.DoesNotContain("heads.b", lora.Layers.Keys);
        Assert.Contains("heads.b", lora.Report.Excluded);
        Assert.Contains("heads.b.weight", model.state_dict().Keys);
        var trainable = lora.TrainableParameters().Select(p => p.Handle).ToHashSet();
        Assert.All(head.parameters(), p => Assert.Contains(p.Handle, trainable));
        var loraCount = lora.Layers.Values.Sum(l => l.AdapterParameters().Sum(p => p.Parameter.numel()));
        Assert.Equal(loraCount + 4 * 3 + 3, lora.CountParameters().Trainable);
    }

    [Fact]
    public void Disabling_adapters_computes_with_the_original_module_and_enabling_restores_the_trained_copy()
    {
        torch.manual_seed(3);
        var model = new ContainerNet();
        var x = randn(5, 6);
        var baseOut = model.call(x).detach();
        var original = Snapshot(NamedAdapterTests.ModuleAt(model, "heads.b"));
        var lora = LoraModel.Wrap(model, WithHead);
        for (var i = 0; i < 3; i++) Step(lora, x);
        var trained = model.call(x).detach();
        var trainedHead = Snapshot(NamedAdapterTests.ModuleAt(model, "heads.b"));
        Assert.True(trainedHead["weight"].sub(original["weight"]).abs().max().item<float>() > 1e-4, "the head did not train");

        using (lora.DisableAdapters())
        {
            TensorAssert.Equal(baseOut, model.call(x), "adapters disabled: base output, original head");
            Assert.All(NamedAdapterTests.ModuleAt(model, "heads.b").parameters(), p => Assert.False(p.requires_grad));
        }
        TensorAssert.Equal(trained, model.call(x), "re-enabled: the trained head is back");
        TensorAssert.Equal(trainedHead["weight"], lora.ModuleToSaveValues("default", "heads.b")["weight"], "ModuleToSaveValues");
    }

    [Fact]
    public void Each_named_adapter_has_its_own_copy_and_one_without_the_module_uses_the_original()
    {
        torch.manual_seed(3);
        var model = new ContainerNet();
        var x = randn(5, 6);
        var original = Snapshot(NamedAdapterTests.ModuleAt(model, "heads.b"));
        var lora = LoraModel.Wrap(model, WithHead);
        Step(lora, x);
        var headDefault = Snapshot(NamedAdapterTests.ModuleAt(model, "heads.b"));

        lora.AddAdapter("other", WithHead with { R = 1 });
        lora.AddAdapter("plain", new LoraConfig { R = 1, TargetModules = ["fc1"] });
        lora.SetAdapter("other");
        // A fresh copy starts from the original values, not from the other adapter's trained ones (PEFT's deepcopy).
        TensorAssert.Equal(original["weight"], NamedAdapterTests.ModuleAt(model, "heads.b").state_dict()["weight"], "other's fresh copy");
        Step(lora, x);
        Step(lora, x);
        var headOther = Snapshot(NamedAdapterTests.ModuleAt(model, "heads.b"));

        lora.SetAdapter("plain");
        var head = NamedAdapterTests.ModuleAt(model, "heads.b");
        TensorAssert.Equal(original["weight"], head.state_dict()["weight"], "an adapter without modules_to_save sees the original");
        Assert.All(head.parameters(), p => Assert.False(p.requires_grad));
        Assert.DoesNotContain(head.parameters().First().Handle, lora.TrainableParameters().Select(p => p.Handle));

        lora.SetAdapter("default");
        TensorAssert.Equal(headDefault["weight"], head.state_dict()["weight"], "default's copy after the others trained");
        TensorAssert.Equal(headOther["bias"], lora.ModuleToSaveValues("other", "heads.b")["bias"], "other's stashed copy");

        lora.DeleteAdapter("other");
        Assert.Throws<ArgumentException>(() => lora.ModuleToSaveValues("other", "heads.b"));
        // Unload leaves the active adapter's trained copy in the model (PEFT puts modules_to_save[active] in place).
        var plain = lora.Unload();
        TensorAssert.Equal(headDefault["weight"], NamedAdapterTests.ModuleAt(plain, "heads.b").state_dict()["weight"], "after unload");
    }

    [Fact]
    public void A_module_to_save_that_matches_nothing_or_clashes_with_another_adapters_layer_is_refused()
    {
        torch.manual_seed(3);
        var model = new ContainerNet();
        var none = Assert.Throws<LoraConfigException>(() => LoraModel.Wrap(model, WithHead with { ModulesToSave = ["classifier"] }));
        Assert.Equal("LoraConfig.ModulesToSave = [classifier] is invalid: it matches no module of the model (PEFT matches a module whose dotted path ends with an entry). (Parameter 'ModulesToSave')", none.Message);
        Assert.Empty(model.modules().OfType<LoraLayer>());

        var lora = LoraModel.Wrap(model, new LoraConfig { R = 1, TargetModules = ["a", "b"] });
        var clash = Assert.Throws<AdapterInjectionException>(() => lora.AddAdapter("x", WithHead));
        Assert.Contains("Module 'heads.b' would be trained in full (modules_to_save) by one adapter and carry a LoRA adapter of another", clash.Message);
        Assert.Equal(["default"], lora.AdapterNames);
    }

    [Theory]
    [InlineData("classifier", "classifier", true)]
    [InlineData("classifier", "head.classifier", true)]
    [InlineData("classifier", "pre_classifier", true)]   // PEFT's plain endswith, kept
    [InlineData("classifier", "classifier.dense", false)]
    [InlineData("heads.b", "heads.b", true)]
    [InlineData("heads.b", "heads.a", false)]
    public void Modules_to_save_match_as_PEFTs_endswith(string entry, string path, bool expected)
    {
        var matcher = new TargetMatcher(new LoraConfig { TargetModules = ["x"], ModulesToSave = [entry] });
        Assert.Equal(expected, matcher.IsModuleToSave(path));
        Assert.True(!expected || matcher.IsExcluded(path), "a module to save must never get a LoRA adapter");
    }
}
