namespace DoraSharp.Cli;

/// <summary>
/// Turns Ctrl+C into a cancellation request while alive: the training loop finishes its step and stops
/// cleanly instead of the process dying mid-write. Dispose to restore the default handling.
/// </summary>
internal sealed class CtrlC : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly ConsoleCancelEventHandler _handler;

    public CtrlC()
    {
        _handler = (_, e) => { e.Cancel = true; _source.Cancel(); };
        Console.CancelKeyPress += _handler;
    }

    /// <summary>Cancelled when Ctrl+C is pressed.</summary>
    public CancellationToken Token => _source.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= _handler;
        _source.Dispose();
    }
}
