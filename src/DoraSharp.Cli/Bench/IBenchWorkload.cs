namespace DoraSharp.Cli.Bench;

/// <summary>A model set up as one variant, timed one unit of work at a time (a layer workload or a MiniLM one).</summary>
internal interface IBenchWorkload : IDisposable
{
    /// <summary>Prepares a phase (<see cref="Phases"/>): train or eval mode, merged or not.</summary>
    void Enter(string phase);

    /// <summary>One unit of work of <paramref name="phase"/>.</summary>
    void Run(string phase);
}
