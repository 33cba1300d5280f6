namespace DoraSharp.Cli;

/// <summary>An <see cref="IProgress{T}"/> that calls back at once on the reporting thread (<see cref="Progress{T}"/> would post to the thread pool).</summary>
internal sealed class Relay<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
