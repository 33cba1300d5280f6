using System.Text.RegularExpressions;
using DoraSharp.Cli;
using DoraSharp.Examples.Experiments;
using Xunit;

namespace DoraSharp.Tests.Cli;

/// <summary>
/// What the installed tool relies on (issue 16): `dora --version` is the package version, and a machine that cannot
/// load libtorch is told why. The packages themselves are checked end to end by scripts/consumer-test.sh.
/// </summary>
public sealed class PackagingTests : IDisposable
{
    private readonly string folder = Directory.CreateTempSubdirectory("dorasharp-packaging-").FullName;

    public void Dispose() => Directory.Delete(folder, recursive: true);

    [Fact]
    public async Task Version_option_prints_the_version_prefix_of_Directory_Build_props()
    {
        // The one version source; test builds carry no VersionSuffix, so the package version is the prefix.
        var props = File.ReadAllText(Path.Combine(Path.GetDirectoryName(Path.GetDirectoryName(Examples.Data.RepositoryData.MnistFolder))!, "Directory.Build.props"));
        var prefix = Regex.Match(props, "<VersionPrefix>([^<]+)</VersionPrefix>").Groups[1].Value;
        Assert.NotEqual("", prefix);

        // A real process: System.CommandLine reads the version of the entry assembly (in-process, the test host's).
        var (code, output, error) = await CliProcess.RunAsync(null, TimeSpan.FromMinutes(2), "--version");

        Assert.Equal(0, code);
        Assert.Equal("", error);
        // The first line is the version; the lines after it say which BLAS path is active (issue 15).
        Assert.Equal(prefix, output.Split('\n')[0].Trim());
    }

    [Fact]
    public void The_library_assembly_holds_no_part_of_the_worked_example_and_the_tool_carries_it()
    {
        // Issue 14: a project that adds DoraSharp gets LoRA/DoRA, not the MNIST demo. The package holds DoraSharp.dll
        // only (scripts/consumer-test.sh checks the packages themselves); the example lives in DoraSharp.Examples.dll.
        var library = typeof(LoraModel).Assembly;
        var exported = library.GetExportedTypes().Select(t => t.FullName!).ToList();

        Assert.Contains("DoraSharp.Training.Trainer", exported);
        Assert.DoesNotContain(exported, n => n.StartsWith("DoraSharp.Examples.", StringComparison.Ordinal)
            || n.StartsWith("DoraSharp.Experiments.", StringComparison.Ordinal) || n.StartsWith("DoraSharp.Data.", StringComparison.Ordinal)
            || n.Contains("Mnist", StringComparison.Ordinal) || n.Contains("Dataset", StringComparison.Ordinal));
        Assert.DoesNotContain(library.GetReferencedAssemblies(), a => a.Name == "DoraSharp.Examples");

        Assert.Equal("DoraSharp.Examples", typeof(MnistMlp).Assembly.GetName().Name);
        Assert.Contains(typeof(NativeRuntime).Assembly.GetReferencedAssemblies(), a => a.Name == "DoraSharp.Examples");
    }

    [Fact]
    public void A_libtorch_load_failure_is_recognised_through_the_type_initializer()
    {
        // What TorchSharp throws the first time it is touched on a machine where libtorch does not load.
        var failure = new TypeInitializationException("TorchSharp.torch", new NotSupportedException(
            "This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.\n\nTrace from LoadNativeBackend: ..."));

        Assert.True(NativeRuntime.IsLoadFailure(failure));
        Assert.True(NativeRuntime.IsLoadFailure(new DllNotFoundException("Unable to load shared library 'LibTorchSharp'")));
        Assert.False(NativeRuntime.IsLoadFailure(new NotSupportedException("Specified method is not supported.")));
        Assert.False(NativeRuntime.IsLoadFailure(new DllNotFoundException("Unable to load shared library 'libSkiaSharp'")));
    }

    [Fact]
    public void A_libstdcxx_without_the_needed_symbol_version_is_named_with_the_fix()
    {
        var old = Path.Combine(folder, "libstdc++.so.6");
        File.WriteAllText(old, "GLIBCXX_3.4.29\0GLIBCXX_3.4.30\0");   // GCC 12's newest
        var failure = new TypeInitializationException("TorchSharp.torch", new NotSupportedException(
            "This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.\n\nTrace from LoadNativeBackend:\n" +
            "    Tried /tools/libLibTorchSharp.so\n" +
            "    Failed: /usr/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /tools/libtorch_cpu.so)\n"));

        var message = NativeRuntime.Explain(failure, old);

        Assert.Contains($"The machine's libstdc++ ({old}) lacks GLIBCXX_3.4.32", message);
        Assert.Contains("apt-get install -t trixie libstdc++6", message);
        Assert.Contains("TorchSharp said: This application or script uses TorchSharp but doesn't contain a reference to libtorch-cpu-linux-x64, Version=2.10.0.", message);
        Assert.Contains("dora:   Failed: /usr/lib/x86_64-linux-gnu/libstdc++.so.6: version `GLIBCXX_3.4.32' not found (required by /tools/libtorch_cpu.so)", message);
        Assert.DoesNotContain("Trace", message);
        Assert.DoesNotContain("Tried", message);
    }

    [Fact]
    public void With_a_recent_libstdcxx_the_message_points_at_the_tool_package()
    {
        var recent = Path.Combine(folder, "libstdc++.so.6");
        File.WriteAllText(recent, "GLIBCXX_3.4.31\0GLIBCXX_3.4.32\0GLIBCXX_3.4.33\0");

        var message = NativeRuntime.Explain(new DllNotFoundException("Unable to load shared library 'LibTorchSharp'"), recent);

        Assert.DoesNotContain("lacks", message);
        Assert.Contains("dotnet tool update dora", message);
    }
}
