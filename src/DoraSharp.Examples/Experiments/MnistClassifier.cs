using TorchSharp;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace DoraSharp.Examples.Experiments;

/// <summary>
/// A model of the worked example: maps a batch of flat 28 × 28 images, [n, 784], to [n, 10] logits, and can be
/// copied before adapters are attached (the experiment pretrains one model and fine-tunes copies of it).
/// </summary>
public abstract class MnistClassifier : Module<Tensor, Tensor>
{
    /// <summary>Registers the module under <paramref name="name"/>.</summary>
    protected MnistClassifier(string name) : base(name)
    {
    }

    /// <summary>
    /// An independent model with the same sizes and a copy of every parameter value, in the same train/eval
    /// mode. Only for a plain model: copy before attaching adapters. Uses torch's global generator to build the
    /// new layers (their initial values are then overwritten), so seed afterwards if what follows must be
    /// reproducible.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has adapters attached.</exception>
    public abstract MnistClassifier Copy();

    /// <summary>
    /// The body of <see cref="Copy"/>: refuses an adapted model, builds a fresh one with <paramref name="create"/>,
    /// copies every parameter value into it and sets its train/eval mode.
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has adapters attached.</exception>
    protected TModel CopyInto<TModel>(Func<TModel> create) where TModel : MnistClassifier
    {
        ArgumentNullException.ThrowIfNull(create);
        var name = GetType().Name;
        if (modules().Any(m => m is LoraLayer))
            throw new InvalidOperationException($"{name}.Copy copies a plain model; this one has adapters attached (copy it before LoraModel.Wrap).");
        var copy = create();
        using (no_grad())
        {
            var source = state_dict();
            foreach (var (parameterName, parameter) in copy.named_parameters())
                parameter.copy_(source[parameterName]);
        }
        copy.train(training);
        return copy;
    }
}
