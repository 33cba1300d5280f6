using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests;

public sealed class LoraModelTests
{
    private static LoraConfig Config(bool dora = false, params string[] targets)
        => new() { R = 2, LoraAlpha = 4, UseDora = dora, TargetModules = targets.Length == 0 ? null : targets, TargetModulesRegex = targets.Length == 0 ? ".*" : null };

    private static void Perturb(LoraModel lora, long seed = 7)
    {
        // B starts at zero (adapted == base); give it values so the adapters visibly act.
        var g = new Generator().manual_seed(seed);
        using var noGrad = no_grad();
        foreach (var layer in lora.Layers.Values) layer.LoraB.copy_(torch.randn(layer.LoraB.shape, generator: g, dtype: layer.LoraB.dtype) * 0.5);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Wrap_adapts_every_Linear_in_Sequential_ModuleList_ModuleDict_and_custom_fields(bool dora)
    {
        torch.manual_seed(1);
        var model = new ContainerNet();
        var baseKeys = model.state_dict().Keys.ToList();
        var x = torch.randn(5, 6);
        var before = model.call(x).detach();

        var lora = LoraModel.Wrap(model, Config(dora));

        Assert.Equal(
            new[] { "stem.0", "stem.2", "blocks.0.fc1", "blocks.0.fc2", "blocks.1.fc1", "blocks.1.fc2", "heads.a", "heads.b" },
            lora.Layers.Keys);
        Assert.All(lora.Layers.Values, l => Assert.IsType<LoraLinear>(l));
        // Base keys unchanged; adapter keys added in PEFT's naming.
        var keys = model.state_dict().Keys.ToHashSet();
        Assert.Subset(keys, baseKeys.ToHashSet());
        foreach (var path in lora.Layers.Keys)
        {
            Assert.Contains(path + ".lora_A.weight", keys);
            Assert.Contains(path + ".lora_B.weight", keys);
            Assert.Equal(dora, keys.Contains(path + ".lora_magnitude_vector"));
        }
        Assert.Equal(baseKeys.Count + lora.Layers.Count * (dora ? 3 : 2), keys.Count);

        // At init the adapted model equals the base model; once B moves, the adapters act.
        Assert.True(before.allclose(model.call(x), rtol: 0, atol: 1e-6));
        Perturb(lora);
        var after = model.call(x).detach();
        Assert.False(before.allclose(after, rtol: 0, atol: 1e-3), "adapters do not reach the forward pass");
        using (lora.DisableAdapters())
            Assert.True(before.allclose(model.call(x), rtol: 0, atol: 0), "disabled adapters must give the base output exactly");
        Assert.True(after.allclose(model.call(x), rtol: 0, atol: 0), "re-enabling must restore the adapted output");
    }

    [Fact]
    public void Only_adapter_parameters_are_trainable()
    {
        var model = new ContainerNet();
        var lora = LoraModel.Wrap(model, Config(true));
        foreach (var (name, p) in model.named_parameters())
        {
            var isAdapter = name.Contains(".lora_A.") || name.Contains(".lora_B.") || name.EndsWith(".lora_magnitude_vector");
            Assert.True(isAdapter == p.requires_grad, $"{name}: requires_grad={p.requires_grad}");
        }
        var count = lora.CountParameters();
        // 8 Linear layers with r = 2: r·(in + out) + out (magnitude) each.
        long[][] shapes = [[4, 6], [4, 4], [8, 4], [4, 8], [8, 4], [4, 8], [3, 4], [3, 4]];
        var expected = shapes.Sum(s => 2 * (s[0] + s[1]) + s[0]);
        Assert.Equal(expected, count.Trainable);
        Assert.Equal(model.parameters().Sum(p => p.numel()), count.Total);
        Assert.StartsWith($"trainable params: {expected:N0} || all params: ", count.ToString());
        Assert.Equal(expected, lora.TrainableParameters().Sum(p => p.numel()));
    }

    [Fact]
    public void A_field_declared_Linear_is_refused_with_the_module_and_the_fix()
    {
        var model = new SealedFieldNet();
        var keys = model.state_dict().Keys.ToList();
        var e = Assert.Throws<AdapterInjectionException>(() => LoraModel.Wrap(model, Config(false, "proj")));
        Assert.Contains("'proj'", e.Message);
        Assert.Contains("field 'proj'", e.Message);
        Assert.Contains("Module<Tensor, Tensor>", e.Message);
        Assert.Equal(keys, model.state_dict().Keys.ToList()); // untouched
    }

    private sealed class ListNet<T> : nn.Module<Tensor, Tensor> where T : nn.Module<Tensor, Tensor>
    {
        private readonly ModuleList<T> layers;

        public ListNet(T first, T second) : base("ListNet")
        {
            layers = new ModuleList<T>(first, second);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x) => layers[1].call(layers[0].call(x));
    }

    [Fact]
    public void Linears_held_directly_in_a_ModuleList_are_replaced_in_place_or_refused_by_the_list_type()
    {
        torch.manual_seed(2);
        var model = new ListNet<nn.Module<Tensor, Tensor>>(nn.Linear(4, 4), nn.Linear(4, 2));
        var x = torch.randn(3, 4);
        var lora = LoraModel.Wrap(model, Config(false, "layers.0", "layers.1"));
        Assert.Equal(["layers.0", "layers.1"], lora.Layers.Keys);
        Assert.All(model.named_children().Single().module.named_children(), c => Assert.IsType<LoraLinear>(c.module));
        var before = model.call(x).detach();
        Perturb(lora);
        Assert.False(before.allclose(model.call(x), rtol: 0, atol: 1e-3), "the list's forward does not reach the adapters");

        var sealedList = new ListNet<Linear>(nn.Linear(4, 4), nn.Linear(4, 2));
        var e = Assert.Throws<AdapterInjectionException>(() => LoraModel.Wrap(sealedList, Config(false, "layers.0")));
        Assert.Contains("cannot hold an adapter layer", e.Message);
        Assert.Contains("ModuleList<Module<Tensor, Tensor>>", e.Message);
    }

    [Fact]
    public void A_refused_layer_rolls_back_the_layers_already_adapted()
    {
        var model = new Holder();
        var e = Assert.Throws<AdapterInjectionException>(() => LoraModel.Wrap(model, Config(false)));
        Assert.Contains("'bad'", e.Message);
        Assert.IsType<Linear>(model.Good);
        Assert.DoesNotContain(model.state_dict().Keys, k => k.Contains("lora_"));
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    private sealed class Holder : nn.Module<Tensor, Tensor>
    {
        private readonly nn.Module<Tensor, Tensor> good = nn.Linear(3, 3);
        private readonly Linear bad = nn.Linear(3, 3);
        public Holder() : base(nameof(Holder)) => RegisterComponents();
        public nn.Module<Tensor, Tensor> Good => good;
        public override Tensor forward(Tensor x) => bad.call(good.call(x));
    }

    [Theory]
    [InlineData(new[] { "fc1" }, null, null, new[] { "blocks.0.fc1", "blocks.1.fc1" })]                  // name suffix
    [InlineData(new[] { "blocks.1.fc2", "stem.0" }, null, null, new[] { "stem.0", "blocks.1.fc2" })]       // exact paths
    [InlineData(new[] { "0.fc1" }, null, null, new[] { "blocks.0.fc1" })]                                 // dotted suffix
    [InlineData(new[] { "c1" }, null, null, null)]                                                        // not a "." boundary
    [InlineData(null, @"blocks\.\d\.fc2", null, new[] { "blocks.0.fc2", "blocks.1.fc2" })]                // full-match regex
    [InlineData(null, @"fc2", null, null)]                                                                // regex must match the whole path
    [InlineData(null, @".*", new[] { "heads.a", "stem.2" }, new[] { "stem.0", "blocks.0.fc1", "blocks.0.fc2", "blocks.1.fc1", "blocks.1.fc2", "heads.b" })] // exclusions
    [InlineData(new[] { "fc1", "fc2" }, null, new[] { "1.fc2" }, new[] { "blocks.0.fc1", "blocks.0.fc2", "blocks.1.fc1" })]
    public void Targets_match_as_PEFT_matches_them(string[]? names, string? regex, string[]? exclude, string[]? expected)
    {
        var model = new ContainerNet();
        var config = new LoraConfig { TargetModules = names, TargetModulesRegex = regex, ExcludeModules = exclude };
        if (expected is null)
        {
            var e = Assert.Throws<LoraConfigException>(() => LoraModel.Wrap(model, config));
            Assert.Equal("TargetModules", e.Option);
            Assert.Contains("stem.0, stem.2, blocks.0.fc1", e.Message); // lists the Linear modules the model has
            return;
        }
        Assert.Equal(expected, LoraModel.Wrap(model, config).Layers.Keys);
    }

    [Fact]
    public void Excluding_a_container_does_not_exclude_its_children()
    {
        // PEFT matches exclude_modules against each module's own path: "stem" names the Sequential only.
        var lora = LoraModel.Wrap(new ContainerNet(), new LoraConfig { TargetModulesRegex = "stem\\..*", ExcludeModules = ["stem"] });
        Assert.Equal(new[] { "stem.0", "stem.2" }, lora.Layers.Keys);
    }

    [Fact]
    public void Report_lists_adapted_modules_and_unmatched_targets()
    {
        var lora = LoraModel.Wrap(new ContainerNet(), new LoraConfig { TargetModules = ["fc1", "q_proj"], ExcludeModules = ["blocks.1.fc1"] });
        Assert.Equal(new[] { "blocks.0.fc1" }, lora.Report.Adapted.Select(a => a.Path));
        Assert.Equal(new[] { "blocks.1.fc1" }, lora.Report.Excluded);
        Assert.Equal(new[] { "q_proj" }, lora.Report.UnmatchedTargets);
        Assert.Equal(new long[] { 8, 4 }, lora.Report.Adapted[0].WeightShape);
        Assert.Equal(8L * (4 + 8), lora.Report.Adapted[0].AdapterParameters);
        Assert.Contains("target 'q_proj' matched no module", lora.Report.ToString());
    }

    [Fact]
    public void Naming_a_non_Linear_leaf_is_an_error()
    {
        var e = Assert.Throws<LoraConfigException>(() => LoraModel.Wrap(new ContainerNet(), new LoraConfig { TargetModules = ["stem.1"] }));
        Assert.Contains("ReLU", e.Message);
    }

    [Fact]
    public void Wrapping_twice_is_refused()
    {
        var model = new ContainerNet();
        LoraModel.Wrap(model, Config(false, "fc1"));
        var e = Assert.Throws<AdapterInjectionException>(() => LoraModel.Wrap(model, Config(false, "fc1")));
        Assert.Contains("already has an adapter", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Merge_unmerge_round_trip_and_merge_and_unload(bool dora)
    {
        torch.manual_seed(3);
        var model = new ContainerNet();
        var lora = LoraModel.Wrap(model, Config(dora));
        Perturb(lora);
        var originalWeights = model.state_dict().Where(kv => !kv.Key.Contains("lora_")).ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var x = torch.randn(7, 6);
        model.eval();
        var adapted = model.call(x).detach();

        lora.Merge();
        Assert.True(lora.IsMerged);
        TensorAssert.Close(adapted, model.call(x), 1e-5, 1e-6, "merged output");
        Assert.Throws<InvalidOperationException>(() => lora.Layers["stem.0"].Merge());
        lora.Unmerge();
        foreach (var (k, w) in originalWeights)
            TensorAssert.Close(w, model.state_dict()[k], 1e-6, 1e-7, $"{k} after unmerge");
        TensorAssert.Close(adapted, model.call(x), 1e-5, 1e-6, "unmerged output");

        var plain = lora.MergeAndUnload();
        Assert.Same(model, plain);
        Assert.DoesNotContain(plain.state_dict().Keys, k => k.Contains("lora_"));
        Assert.Equal(originalWeights.Keys.Order(), plain.state_dict().Keys.Order());
        Assert.Empty(plain.modules().OfType<LoraLayer>());
        TensorAssert.Close(adapted, model.call(x), 1e-5, 1e-6, "output after merge_and_unload");
        Assert.Throws<InvalidOperationException>(() => lora.Merge());
    }

    [Fact]
    public void Base_checkpoint_loads_into_the_wrapped_model()
    {
        torch.manual_seed(4);
        var trained = new ContainerNet();
        var checkpoint = trained.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var model = new ContainerNet();
        LoraModel.Wrap(model, Config(true));
        var (missing, unexpected) = model.load_state_dict(checkpoint, strict: false);
        Assert.Empty(unexpected);
        Assert.All(missing, k => Assert.Contains("lora_", k));
        foreach (var (k, v) in checkpoint) Assert.True(v.allclose(model.state_dict()[k], rtol: 0, atol: 0), k);
    }
}
