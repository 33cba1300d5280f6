using System.Runtime.InteropServices;

namespace DoraSharp.Cli;

/// <summary>
/// Turns Ctrl+C (SIGINT) and SIGTERM (sent by <c>kill</c>, <c>timeout</c>, systemd, <c>docker stop</c>) into a
/// cancellation request while alive: the training loop finishes its step, checkpoints and stops cleanly instead of
/// the process dying mid-write. The first signal decides the exit code. Dispose to restore the default handling.
/// </summary>
internal sealed class StopSignals : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly List<PosixSignalRegistration> _registrations = [];
    private int _received;   // 0, or the first signal's number (2 or 15)

    public StopSignals()
    {
        Register(PosixSignal.SIGINT, 2);
        Register(PosixSignal.SIGTERM, 15);
    }

    /// <summary>Cancelled when a signal arrives.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>True once a signal has arrived.</summary>
    public bool Stopped => Volatile.Read(ref _received) != 0;

    /// <summary>The first signal as users know it: "Ctrl+C" or "SIGTERM" (null before any).</summary>
    public string? Name => Volatile.Read(ref _received) switch { 2 => "Ctrl+C", 15 => "SIGTERM", _ => null };

    /// <summary>
    /// The exit code of a stopped run, 128 + the signal's number as shells report a process killed by it: 130 for
    /// Ctrl+C, 143 for SIGTERM (so a supervisor sees the same code as if the process had not caught the signal).
    /// </summary>
    public int ExitCode => 128 + Volatile.Read(ref _received);

    private void Register(PosixSignal signal, int number)
    {
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;   // no immediate termination: the token stops the work
                Interlocked.CompareExchange(ref _received, number, 0);
                _source.Cancel();
            }));
        }
        catch (PlatformNotSupportedException)
        {
            // A platform without this signal keeps its default handling.
        }
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        // The source is not disposed: a handler already running on another thread may still cancel it (it holds no
        // unmanaged resources unless its WaitHandle is used).
    }
}
