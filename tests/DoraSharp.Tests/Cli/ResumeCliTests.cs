using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>`dora demo --resume` and `dora compare --resume` refuse what they cannot resume, in one line, before training anything.</summary>
public sealed class ResumeCliTests : IDisposable
{
    private readonly string _out = Path.Combine(Path.GetTempPath(), "dora-resume-cli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_out)) Directory.Delete(_out, recursive: true);
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("compare")]
    public void Resume_without_checkpoints_is_refused_naming_the_folder(string command)
    {
        var (code, error, _) = CliRunner.Run(command, "--out", _out, "--resume");
        Assert.Equal(2, code);
        Assert.Equal($"dora: --resume: {Path.Combine(_out, "checkpoints")} holds no checkpoints to resume from " +
                     $"(a finished run deletes its checkpoints; its results are in {_out}).", error.TrimEnd());
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("compare")]
    public void Starting_over_an_unfinished_run_without_resume_is_refused(string command)
    {
        Directory.CreateDirectory(Path.Combine(_out, "ck", "seed-1", "pretraining"));
        var (code, error, _) = CliRunner.Run(command, "--out", _out, "--checkpoint-dir", Path.Combine(_out, "ck"));
        Assert.Equal(2, code);
        Assert.Contains("holds the checkpoints of an unfinished run: add --resume to continue it", error);
        Assert.True(Directory.Exists(Path.Combine(_out, "ck", "seed-1", "pretraining")));
    }

    [Theory]
    [InlineData("demo")]
    [InlineData("compare")]
    public void Checkpoint_options_are_checked_while_parsing(string command)
    {
        var (code, error, _) = CliRunner.Run(command, "--out", _out, "--keep", "0");
        Assert.Equal(2, code);
        Assert.StartsWith("dora: --keep must be a whole number from 1 to 100 (got '0').", error);
    }
}
