using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>`dora demo --resume` refuses what it cannot resume, in one line, before training anything.</summary>
public sealed class DemoResumeCliTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "dora-demo-resume-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    [Fact]
    public void Resume_without_checkpoints_is_refused_naming_the_folder()
    {
        var (code, error, _) = CliRunner.Run("demo", "--out", _out, "--resume");
        Assert.Equal(2, code);
        Assert.Contains($"--resume: {Path.Combine(_out, "checkpoints")} holds no checkpoints to resume from", error);
    }

    [Fact]
    public void Starting_over_an_unfinished_run_without_resume_is_refused()
    {
        Directory.CreateDirectory(Path.Combine(_out, "ck", "seed-1", "pretraining"));
        var (code, error, _) = CliRunner.Run("demo", "--out", _out, "--checkpoint-dir", Path.Combine(_out, "ck"));
        Assert.Equal(2, code);
        Assert.Contains("holds the checkpoints of an unfinished run: add --resume to continue it", error);
        Assert.True(Directory.Exists(Path.Combine(_out, "ck", "seed-1", "pretraining")));
    }
}
