namespace DoraSharp;

/// <summary>
/// libtorch computes wrong float32 conv2d input gradients on this machine and the library could not switch
/// to kernels that compute them right (see docs/known-issues.md). The message holds the measurements.
/// </summary>
public sealed class ConvBackendException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public ConvBackendException(string message, ConvBackwardReport report) : base(message)
    {
        Report = report;
    }

    /// <summary>The failed check.</summary>
    public ConvBackwardReport Report { get; }
}
