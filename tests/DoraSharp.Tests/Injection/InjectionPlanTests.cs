using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.Injection;

/// <summary>
/// <see cref="InjectionPlan"/>: PEFT's target selection as a pure function of the model's modules and the config.
/// ContainerNet's modules, depth first: stem (Sequential: stem.0 Linear, stem.1 ReLU, stem.2 Linear), blocks
/// (ModuleList of two Blocks with fc1 and fc2), heads (ModuleDict: heads.a, heads.b).
/// </summary>
[Collection(SeededRuns.Name)]
public sealed class InjectionPlanTests
{
    private static InjectionPlan Plan(nn.Module model, LoraConfig config) => InjectionPlan.Create(ModuleSurgery.Descendants(model), config);

    [Fact]
    public void A_plan_lists_targets_exclusions_and_modules_to_save_in_model_order_and_leaves_the_model_untouched()
    {
        var model = new ContainerNet();
        var before = model.named_modules().Select(m => (m.name, m.module)).ToList();

        var plan = Plan(model, new LoraConfig { TargetModulesRegex = ".*", ExcludeModules = ["fc2"], ModulesToSave = ["heads.b"] });

        Assert.Equal(["stem.0", "stem.2", "blocks.0.fc1", "blocks.1.fc1", "heads.a"], plan.Targets.Select(t => t.Path));
        // Containers and the ReLU match the regex too but are not adaptable: neither targets nor exclusions.
        Assert.Equal(["blocks.0.fc2", "blocks.1.fc2", "heads.b"], plan.Excluded.Select(e => e.Path));
        Assert.Equal(["heads.b"], plan.ModulesToSave);
        Assert.Empty(plan.UnmatchedTargets); // a regex has no entries
        Assert.False(plan.HasConvolution);
        Assert.Equal(before, model.named_modules().Select(m => (m.name, m.module)).ToList());
        Assert.All(model.parameters(), p => Assert.True(p.requires_grad));
    }

    [Fact]
    public void A_target_list_entry_matches_a_path_suffix_and_an_entry_that_matches_nothing_is_reported()
    {
        var plan = Plan(new ContainerNet(), new LoraConfig { TargetModules = ["fc1", "nothing"] });
        Assert.Equal(["blocks.0.fc1", "blocks.1.fc1"], plan.Targets.Select(t => t.Path));
        Assert.Equal(["nothing"], plan.UnmatchedTargets);
    }

    [Fact]
    public void A_plan_without_targets_is_returned_and_Wrap_refuses_it_naming_the_exclusions_and_the_adaptable_modules()
    {
        var config = new LoraConfig { TargetModules = ["fc2"], ExcludeModules = ["fc2"] };
        var model = new ContainerNet();

        var plan = Plan(model, config);

        Assert.Empty(plan.Targets);
        Assert.Equal(["blocks.0.fc2", "blocks.1.fc2"], plan.Excluded.Select(e => e.Path));
        var refusal = plan.NoTargets();
        Assert.Equal("TargetModules", refusal.Option);
        Assert.Contains("that is not excluded (excluded: blocks.0.fc2, blocks.1.fc2)", refusal.Message);
        Assert.Contains("modules are: stem.0, stem.2, blocks.0.fc1, blocks.0.fc2, blocks.1.fc1, blocks.1.fc2, heads.a, heads.b", refusal.Message);
        var e = Assert.Throws<LoraConfigException>(() => LoraModel.Wrap(model, config));
        Assert.Equal(refusal.Message, e.Message);
    }

    [Fact]
    public void A_listed_leaf_of_an_unsupported_type_is_refused_by_name()
    {
        var e = Assert.Throws<LoraConfigException>(() => Plan(new ContainerNet(), new LoraConfig { TargetModules = ["stem.1"] }));
        Assert.Equal("TargetModules", e.Option);
        Assert.Contains("module 'stem.1' is a ReLU", e.Message);
    }

    [Fact]
    public void Modules_to_save_that_match_nothing_are_refused()
    {
        var e = Assert.Throws<LoraConfigException>(() => Plan(new ContainerNet(), new LoraConfig { TargetModules = ["fc1"], ModulesToSave = ["classifier"] }));
        Assert.Equal("ModulesToSave", e.Option);
        Assert.Contains("[classifier]", e.Message);
    }

    [Fact]
    public void A_layer_that_already_has_an_adapter_is_refused_and_a_base_view_plans_on_the_base_layers()
    {
        var model = new ContainerNet();
        var lora = LoraModel.Wrap(model, new LoraConfig { TargetModules = ["fc1"] });

        var e = Assert.Throws<AdapterInjectionException>(() => Plan(model, new LoraConfig { TargetModules = ["fc1"] }));
        Assert.Contains("'blocks.0.fc1' already has an adapter", e.Message);

        // The registry's view shows its own layers as their base layers, so a second adapter is planned on the base model.
        var plan = InjectionPlan.Create(lora.Registry.BaseView(), new LoraConfig { TargetModules = ["fc1", "heads.a"] });
        Assert.Equal(["blocks.0.fc1", "blocks.1.fc1", "heads.a"], plan.Targets.Select(t => t.Path));
        Assert.Same(lora.Layers["blocks.0.fc1"].BaseLayer, plan.Targets[0].Module);
    }

    [Fact]
    public void One_layer_at_two_paths_is_planned_at_both_and_gets_one_adapter()
    {
        var shared = nn.Linear(4, 4);
        var model = nn.Sequential(("a", shared), ("b", shared));

        var plan = Plan(model, new LoraConfig { TargetModulesRegex = "a|b" });

        Assert.Equal(["a", "b"], plan.Targets.Select(t => t.Path));
        Assert.Same(plan.Targets[0].Module, plan.Targets[1].Module);
        var lora = LoraModel.Wrap(model, new LoraConfig { TargetModulesRegex = "a|b" });
        Assert.Same(lora.Layers["a"], lora.Layers["b"]);
    }
}
