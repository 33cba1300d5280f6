using System.Diagnostics;
using System.Runtime.InteropServices;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// Runs `dora` (the dora.dll built next to the tests) as a real child process, for what an in-process run cannot
/// show: how the process answers a signal. Standard output and error are collected while it runs.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    private readonly Process _process;
    private readonly Task<string> _output;
    private readonly Task<string> _error;

    private CliProcess(Process process)
    {
        _process = process;
        _output = process.StandardOutput.ReadToEndAsync();
        _error = process.StandardError.ReadToEndAsync();
    }

    /// <param name="environment">Variables added to the child's environment; may be null.</param>
    /// <param name="args">The arguments after `dora`.</param>
    public static CliProcess Start(IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var start = new ProcessStartInfo(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "dora.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        return new CliProcess(Process.Start(start)!);
    }

    /// <summary>Runs `dora` to its end and returns what it wrote; fails after <paramref name="timeout"/>.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(IReadOnlyDictionary<string, string>? environment, TimeSpan timeout, params string[] args)
    {
        using var process = Start(environment, args);
        return await process.WaitForExitAsync(timeout);
    }

    /// <summary>
    /// Polls <paramref name="condition"/> (IO errors count as false: files may be renamed under it) until it holds.
    /// Throws if the process exits first or <paramref name="timeout"/> passes, with what the process wrote.
    /// </summary>
    public async Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                if (condition()) return;
            }
            catch (IOException)
            {
            }
            if (_process.HasExited)
                throw new InvalidOperationException($"the process exited ({_process.ExitCode}) before {what}: {await _error}");
            if (clock.Elapsed > timeout) throw new TimeoutException($"no {what} after {timeout.TotalSeconds} s");
            await Task.Delay(5);
        }
    }

    /// <summary>Sends <paramref name="signal"/> with kill(2): unlike <see cref="Process.Kill()"/> (SIGKILL), the process can catch it.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0) throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastWin32Error()}");
    }

    public async Task<(int ExitCode, string Output, string Error)> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return (_process.ExitCode, await _output, await _error);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);   // a failed test leaves no process behind
        _process.Dispose();
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}
