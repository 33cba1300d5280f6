using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Everything observable about a model — its module tree (paths, types and instances), its state dict (names in
/// order, dtypes, shapes, values bit for bit), requires_grad of every parameter, train/eval mode, and its output
/// on a fixed input — to prove that a refused load changed nothing. The output is compared bit for bit: both
/// evaluations run the same operations on the same inputs, provided libtorch's kernels were not switched in between.
/// The snapshot records that process-wide state too (<see cref="BackendState"/>) and names it when it changed, since
/// then the output check cannot be exact (issue 13: 3e-8 on an AMD CPU when another test flipped oneDNN).
/// </summary>
internal sealed class ModelSnapshot : IDisposable
{
    private readonly List<(string Path, nn.Module Module)> _modules;
    private readonly List<(string Name, Tensor Value)> _state;
    private readonly List<(string Name, bool RequiresGrad)> _requiresGrad;
    private readonly bool _training;
    private readonly Tensor? _input;
    private readonly Tensor? _output;
    private readonly BackendState _backend;

    private ModelSnapshot(nn.Module<Tensor, Tensor> model, Tensor? input)
    {
        _modules = model.named_modules().Select(m => (m.name, m.module)).ToList();
        _state = model.state_dict().Select(kv => (kv.Key, kv.Value.detach().clone())).ToList();
        _requiresGrad = model.named_parameters().Select(p => (p.name, p.parameter.requires_grad)).ToList();
        _training = model.training;
        _backend = BackendState.Current();
        if (input is not null)
        {
            _input = input.clone();
            using (no_grad()) _output = model.call(_input).detach().clone();
        }
    }

    /// <summary>Records <paramref name="model"/>; with <paramref name="input"/>, its output on it too.</summary>
    public static ModelSnapshot Take(nn.Module<Tensor, Tensor> model, Tensor? input = null) => new(model, input);

    /// <summary>Fails unless <paramref name="model"/> is exactly as recorded.</summary>
    public void AssertUnchanged(nn.Module<Tensor, Tensor> model)
    {
        var modules = model.named_modules().Select(m => (m.name, m.module)).ToList();
        Assert.Equal(_modules.Select(m => m.Path), modules.Select(m => m.name));
        for (int i = 0; i < modules.Count; i++)
        {
            Assert.True(ReferenceEquals(_modules[i].Module, modules[i].module), $"module '{modules[i].name}' was replaced by a {modules[i].module.GetType().Name}");
        }
        var state = model.state_dict().ToList();
        Assert.Equal(_state.Select(s => s.Name), state.Select(s => s.Key));
        for (int i = 0; i < state.Count; i++)
        {
            using var current = state[i].Value.detach();
            TensorAssert.Equal(_state[i].Value, current, $"state '{state[i].Key}'");
        }
        Assert.Equal(_requiresGrad, model.named_parameters().Select(p => (p.name, p.parameter.requires_grad)).ToList());
        Assert.Equal(_training, model.training);
        if (_input is not null)
        {
            var backend = BackendState.Current();
            Assert.True(backend == _backend,
                $"libtorch's process-wide state changed during the test ({_backend} → {backend}): something running beside it " +
                "switched kernels, so the output cannot be compared bit for bit; such tests belong in the ProcessWideState collection");
            Tensor output;
            using (no_grad()) output = model.call(_input).detach().clone();
            using (output) TensorAssert.Equal(_output!, output, "output on the recorded input");
        }
    }

    public void Dispose()
    {
        _state.ForEach(s => s.Value.Dispose());
        _input?.Dispose();
        _output?.Dispose();
    }
}

/// <summary>The process-wide settings that choose libtorch's CPU kernels: the oneDNN switch (null where unreachable) and the thread count.</summary>
internal readonly record struct BackendState(bool? Mkldnn, int Threads)
{
    public static BackendState Current() => new(MkldnnBackend.IsAvailable ? MkldnnBackend.Enabled : null, get_num_threads());

    public override string ToString() => $"oneDNN {Mkldnn switch { true => "on", false => "off", null => "n/a" }}, {Threads} threads";
}
