using DoraSharp.Training;
using TorchSharp;

namespace DoraSharp.Examples.Data;

/// <summary>
/// One split (train or test) of an image classification data set, held as two tensors.
/// </summary>
/// <remarks>
/// Owns its tensors: dispose it, or move the tensors elsewhere, when done. As an <see cref="IClassificationData"/>
/// it goes straight into <see cref="Trainer.Fit"/> and <see cref="Evaluator.Evaluate"/> (the images are the inputs).
/// </remarks>
public sealed class DatasetSplit : IClassificationData, IDisposable
{
    internal DatasetSplit(torch.Tensor images, torch.Tensor labels, string source)
    {
        Images = images;
        Labels = labels;
        Count = (int)labels.shape[0];
        Source = source;
    }

    /// <summary>The images, float32 of shape [<see cref="Count"/>, 784]: each row a 28 × 28 image in row-major order, each pixel its byte value / 255, so in [0, 1].</summary>
    public torch.Tensor Images { get; }

    /// <summary>The class of each image, int64 of shape [<see cref="Count"/>], each in 0..9.</summary>
    public torch.Tensor Labels { get; }

    /// <summary>The images (<see cref="Images"/>): what the model is given.</summary>
    torch.Tensor IClassificationData.Inputs => Images;

    /// <summary>The number of images (and labels).</summary>
    public int Count { get; }

    /// <summary>Where the data came from, for logs: the data set, the split and the files read.</summary>
    public string Source { get; }

    /// <summary>Releases both tensors.</summary>
    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}
