using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

/// <summary>Several named adapters on one model: PEFT's add_adapter, set_adapter, disable_adapter, delete_adapter.</summary>
[Collection(SeededRuns.Name)] // Model(seed) rebuilds the same base model twice
public sealed class NamedAdapterTests
{
    private static readonly LoraConfig LoraOnBlocks = new() { R = 2, LoraAlpha = 4, TargetModules = ["fc1", "fc2"] };
    private static readonly LoraConfig DoraOnHeads = new() { R = 3, LoraAlpha = 3, UseDora = true, TargetModules = ["fc2", "a", "b"] };

    /// <summary>Gives every B (zero at init) and magnitude seeded values, so each adapter visibly changes the output.</summary>
    internal static void Perturb(IReadOnlyDictionary<string, LoraLayer> layers, long seed)
    {
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        foreach (var layer in layers.Values.Distinct())
        {
            layer.LoraB.copy_(randn(layer.LoraB.shape, generator: g) * 0.5);
            layer.Magnitude?.mul_(1 + 0.1 * randn(layer.Magnitude.shape, generator: g));
        }
    }

    /// <summary>A ContainerNet with seed <paramref name="seed"/>'s weights (twice the same seed → the same base model).</summary>
    private static ContainerNet Model(long seed = 11)
    {
        torch.manual_seed(seed);
        return new ContainerNet();
    }

    /// <summary>What a model with only adapter <paramref name="name"/> of <paramref name="lora"/> computes, built independently.</summary>
    private static Tensor Alone(LoraModel lora, string name, Tensor x)
    {
        var model = Model();
        var single = LoraModel.Wrap(model, lora.Configs[name]);
        using (no_grad())
        {
            foreach (var (path, layer) in lora.LayersOf(name))
                foreach (var (local, p) in layer.AdapterParameters())
                    single.Layers[path].AdapterParameters().Single(q => q.Name == local).Parameter.copy_(p);
        }
        return model.call(x).detach();
    }

    /// <summary>"default" (LoRA on fc1/fc2) and "heads" (DoRA on fc2, a, b), both perturbed; "default" active.</summary>
    private static LoraModel TwoAdapters(ContainerNet model)
    {
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        Perturb(lora.Layers, 1);
        lora.AddAdapter("heads", DoraOnHeads);
        Perturb(lora.LayersOf("heads"), 2);
        return lora;
    }

    [Fact]
    public void Two_adapters_give_different_outputs_each_equal_to_that_adapter_alone()
    {
        var model = Model();
        var x = randn(4, 6);
        var baseOut = model.call(x).detach();
        var lora = TwoAdapters(model);

        Assert.Equal(["default", "heads"], lora.AdapterNames);
        Assert.Equal("default", lora.ActiveAdapter); // add_adapter does not activate (PEFT)
        var outDefault = model.call(x).detach();
        lora.SetAdapter("heads");
        Assert.Equal("heads", lora.ActiveAdapter);
        Assert.Same(DoraOnHeads, lora.Config);
        var outHeads = model.call(x).detach();

        Assert.True(outDefault.sub(outHeads).abs().max().item<float>() > 1e-2, "the two adapters compute the same output");
        Assert.True(outDefault.sub(baseOut).abs().max().item<float>() > 1e-2, "the default adapter does nothing");
        TensorAssert.Equal(Alone(lora, "heads", x), outHeads, "adapter 'heads' in a two-adapter model vs alone");
        TensorAssert.Equal(Alone(lora, "default", x), outDefault, "adapter 'default' in a two-adapter model vs alone");
    }

    [Fact]
    public void Switching_back_and_forth_and_disabling_are_exact()
    {
        var model = Model();
        var x = randn(4, 6);
        var baseOut = model.call(x).detach();
        var lora = TwoAdapters(model);
        model.eval(); // the DoRA norm cache is in play too
        var outDefault = model.call(x).detach();
        lora.SetAdapter("heads");
        var outHeads = model.call(x).detach();

        for (var i = 0; i < 3; i++)
        {
            lora.SetAdapter("default");
            TensorAssert.Equal(outDefault, model.call(x), $"default, round {i}");
            lora.SetAdapter("heads");
            TensorAssert.Equal(outHeads, model.call(x), $"heads, round {i}");
        }
        using (lora.DisableAdapters())
        {
            TensorAssert.Equal(baseOut, model.call(x), "adapters disabled");
            lora.SetAdapter("default"); // switching while disabled keeps them disabled
            TensorAssert.Equal(baseOut, model.call(x), "adapters disabled after a switch");
        }
        TensorAssert.Equal(outDefault, model.call(x), "re-enabled on default");
    }

    [Fact]
    public void Only_the_active_adapter_is_in_the_model_and_trains()
    {
        var model = Model();
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        lora.AddAdapter("heads", DoraOnHeads);
        var defaultParams = lora.LayersOf("default").Values.SelectMany(l => l.AdapterParameters()).Select(p => p.Parameter.Handle).ToHashSet();
        var headsParams = lora.LayersOf("heads").Values.Distinct().SelectMany(l => l.AdapterParameters()).Select(p => p.Parameter.Handle).ToHashSet();

        Assert.Equal(defaultParams, lora.TrainableParameters().Select(p => p.Handle).ToHashSet());
        lora.SetAdapter("heads");
        Assert.Equal(headsParams, lora.TrainableParameters().Select(p => p.Handle).ToHashSet());
        Assert.Equal(["blocks.0.fc2", "blocks.1.fc2", "heads.a", "heads.b"], lora.Layers.Keys);
        // Where only the other adapter has a layer, the plain base layer is back.
        Assert.IsType<Linear>(ModuleAt(model, "blocks.0.fc1"));
        Assert.IsType<LoraLinear>(ModuleAt(model, "heads.a"));

        // A training step on 'heads' leaves 'default' untouched.
        var before = lora.LayersOf("default").Values.SelectMany(l => l.AdapterParameters()).Select(p => p.Parameter.detach().clone()).ToList();
        var optimizer = optim.SGD(lora.TrainableParameters(), 0.1);
        model.call(randn(4, 6)).square().sum().backward();
        optimizer.step();
        var after = lora.LayersOf("default").Values.SelectMany(l => l.AdapterParameters()).Select(p => p.Parameter).ToList();
        for (var i = 0; i < before.Count; i++) TensorAssert.Equal(before[i], after[i], $"default parameter {i}");
    }

    [Fact]
    public void Deleting_the_active_adapter_activates_the_first_remaining_and_frees_its_slots()
    {
        var model = Model();
        var x = randn(4, 6);
        var baseOut = model.call(x).detach();
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        Perturb(lora.Layers, 1);
        lora.AddAdapter("heads", DoraOnHeads);
        lora.AddAdapter("third", LoraOnBlocks with { R = 1 });
        var outDefault = model.call(x).detach();

        lora.DeleteAdapter("default"); // active: PEFT moves on to the first remaining adapter
        Assert.Equal(["heads", "third"], lora.AdapterNames);
        Assert.Equal("heads", lora.ActiveAdapter);
        lora.SetAdapter("third");
        lora.DeleteAdapter("heads");   // inactive: the slots only it used go back to the base layers
        Assert.Equal(["third"], lora.AdapterNames);
        Assert.IsType<Linear>(ModuleAt(model, "heads.a"));
        Assert.IsType<LoraLinear>(ModuleAt(model, "blocks.0.fc1"));

        var only = Assert.Throws<InvalidOperationException>(() => lora.DeleteAdapter("third"));
        Assert.Contains("only adapter; call Unload()", only.Message);
        var unknown = Assert.Throws<ArgumentException>(() => lora.SetAdapter("default"));
        Assert.Contains("No adapter is named 'default'; the adapters are: third", unknown.Message);

        var plain = lora.Unload();
        Assert.Empty(plain.modules().OfType<LoraLayer>());
        TensorAssert.Equal(baseOut, model.call(x), "after unload");
        Assert.NotNull(outDefault);
    }

    [Fact]
    public void Merging_and_unmerging_the_active_adapter_restores_the_base_and_blocks_switching()
    {
        var model = Model();
        var x = randn(4, 6);
        var baseWeights = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone());
        var baseOut = model.call(x).detach();
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        lora.AddAdapter("heads", DoraOnHeads);
        Perturb(lora.LayersOf("heads"), 2);
        lora.SetAdapter("heads");
        var unmerged = model.call(x).detach();

        lora.Merge();
        TensorAssert.Close(unmerged, model.call(x), 1e-5, 1e-5, "merged vs unmerged");
        var e = Assert.Throws<InvalidOperationException>(() => lora.SetAdapter("default"));
        Assert.Equal("Cannot switch to adapter 'default': adapter 'heads' is merged into the base weights; call Unmerge() first.", e.Message);
        Assert.Throws<InvalidOperationException>(() => lora.AddAdapter("more", LoraOnBlocks));
        Assert.Equal("heads", lora.ActiveAdapter);

        using (lora.DisableAdapters()) // PEFT unmerges a merged adapter when adapters are disabled
        {
            Assert.False(lora.IsMerged);
            TensorAssert.Close(baseOut, model.call(x), 1e-6, 1e-6, "disabled after a merge: the base output");
        }
        lora.Merge();
        lora.Unmerge();
        foreach (var (key, w) in baseWeights)
            if (!key.Contains("lora_")) TensorAssert.Close(w, model.state_dict()[key], 1e-6, 1e-6, $"{key} after unmerge");
        lora.SetAdapter("default"); // unmerge restores W to rounding (PEFT's too), so the outputs agree to rounding
        TensorAssert.Close(Alone(lora, "default", x), model.call(x), 1e-6, 1e-6, "default after the other adapter's merge and unmerge");
    }

    [Theory]
    [InlineData("")]
    [InlineData(" ")]
    [InlineData("a/b")]
    [InlineData("a.b")]
    [InlineData("..")]
    [InlineData(" padded")]
    public void Invalid_adapter_names_are_refused_naming_the_rule(string name)
    {
        var model = Model();
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        var e = Assert.ThrowsAny<ArgumentException>(() => lora.AddAdapter(name, LoraOnBlocks));
        Assert.Equal("adapterName", e.ParamName);
        Assert.Equal(["default"], lora.AdapterNames);
        Assert.ThrowsAny<ArgumentException>(() => LoraModel.Wrap(Model(), LoraOnBlocks, name));
    }

    [Fact]
    public void A_refused_AddAdapter_changes_nothing()
    {
        var model = Model();
        var x = randn(4, 6);
        var lora = LoraModel.Wrap(model, LoraOnBlocks);
        Perturb(lora.Layers, 1);
        var before = model.call(x).detach();
        var keys = model.state_dict().Keys.ToList();

        var taken = Assert.Throws<ArgumentException>(() => lora.AddAdapter("default", DoraOnHeads));
        Assert.Contains("An adapter named 'default' exists already", taken.Message);
        var nothing = Assert.Throws<LoraConfigException>(() => lora.AddAdapter("x", LoraOnBlocks with { TargetModules = ["nope"] }));
        Assert.Contains("matches no Linear, Embedding or Conv2d module", nothing.Message);

        Assert.Equal(["default"], lora.AdapterNames);
        Assert.Equal(keys, model.state_dict().Keys.ToList());
        TensorAssert.Equal(before, model.call(x), "output after refused AddAdapter calls");
    }

    [Fact]
    public void An_adapter_added_before_to_float64_computes_with_the_converted_base()
    {
        var model = new Block(4); // (ContainerNet's ModuleDict trips TorchSharp's own .to())
        var lora = LoraModel.Wrap(model, new LoraConfig { R = 2, TargetModules = ["fc1"] });
        lora.AddAdapter("both", new LoraConfig { R = 2, UseDora = true, TargetModules = ["fc1", "fc2"] });
        model.to(ScalarType.Float64); // replaces the parameters of the modules in the model only: default's layer and fc2
        lora.SetAdapter("both");
        Assert.All(lora.Layers.Values, l => Assert.Equal(ScalarType.Float64, l.Weight.dtype));
        Assert.Same(lora.LayersOf("default")["fc1"].Weight, lora.Layers["fc1"].Weight);
        Assert.Equal(ScalarType.Float64, model.call(randn(3, 4, dtype: ScalarType.Float64)).dtype);
        var plain = lora.Unload();
        Assert.All(plain.parameters(), p => Assert.Equal(ScalarType.Float64, p.dtype));
    }

    internal static nn.Module ModuleAt(nn.Module root, string path)
    {
        var module = root;
        foreach (var part in path.Split('.')) module = module.named_children().First(c => c.name == part).module;
        return module;
    }
}
