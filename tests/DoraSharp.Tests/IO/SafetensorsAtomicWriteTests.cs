using System.Diagnostics;
using System.Runtime.InteropServices;
using DoraSharp.IO;
using Xunit;
using TorchSharp;

namespace DoraSharp.Tests.IO;

/// <summary>
/// Writes are atomic: a failed write leaves the previous file byte for byte and no temporary file behind.
/// </summary>
public sealed class SafetensorsAtomicWriteTests
{
    private static readonly IReadOnlyDictionary<string, string> Format = new Dictionary<string, string> { ["format"] = "pt" };

    private static void WriteOnes(string path, int count)
    {
        using torch.Tensor tensor = torch.ones(count);
        SafetensorsFile.Write(path, [new("w", tensor)], Format);
    }

    [Fact]
    public void Replaces_an_existing_file_and_leaves_nothing_else()
    {
        using var directory = new TempDirectory();
        string path = directory.File("adapter.safetensors");
        File.WriteAllBytes(path, new byte[4096]); // longer than the new file: nothing of it may survive

        WriteOnes(path, 3);

        Assert.Equal(["adapter.safetensors"], directory.Entries());
        using SafetensorsContent content = SafetensorsFile.Read(path);
        Assert.Equal(new[] { 1f, 1f, 1f }, TensorTestData.Values<float>(content.Tensors["w"]));
    }

    [Fact]
    public void Refuses_to_write_over_a_directory()
    {
        using var directory = new TempDirectory();
        string path = directory.File("adapter.safetensors");
        Directory.CreateDirectory(path);
        File.WriteAllText(Path.Combine(path, "inside.txt"), "keep");

        var e = Assert.Throws<IOException>(() => WriteOnes(path, 3));

        Assert.Contains(path, e.Message);
        Assert.Contains("a directory with that name exists", e.Message);
        Assert.Equal("keep", File.ReadAllText(Path.Combine(path, "inside.txt")));
        Assert.Equal(["adapter.safetensors"], directory.Entries());
    }

    [Fact]
    public void Reports_a_missing_directory_by_path()
    {
        using var directory = new TempDirectory();
        string path = Path.Combine(directory.Path, "missing", "adapter.safetensors");

        var e = Assert.Throws<IOException>(() => WriteOnes(path, 3));

        Assert.StartsWith(path + ": could not write the file", e.Message);
        Assert.Empty(directory.Entries());
    }

    [Fact]
    public void A_failure_while_writing_tensor_data_keeps_the_previous_file()
    {
        using var directory = new TempDirectory();
        string path = directory.File("adapter.safetensors");
        WriteOnes(path, 5);
        byte[] previous = File.ReadAllBytes(path);

        // A meta tensor has a dtype and shape but no data: the header is fine, copying its bytes fails,
        // after the temporary file has been created and partly written.
        using torch.Tensor good = torch.ones(2);
        using torch.Tensor noData = torch.empty([2, 3], torch.ScalarType.Float32, device: torch.META);
        var e = Assert.Throws<ExternalException>(() => SafetensorsFile.Write(path, [new("a_good", good), new("b_no_data", noData)], Format));
        Assert.Contains("meta", e.Message);

        Assert.Equal(previous, File.ReadAllBytes(path));
        Assert.Equal(["adapter.safetensors"], directory.Entries());
    }

    [SkippableFact]
    public void A_read_only_directory_gives_a_clear_error_and_keeps_the_previous_file()
    {
        using var directory = new TempDirectory();
        string folder = Path.Combine(directory.Path, "adapters");
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, "adapter.safetensors");
        WriteOnes(path, 5);
        byte[] previous = File.ReadAllBytes(path);

        using (ReadOnly(folder))
        {
            var e = Assert.Throws<IOException>(() => WriteOnes(path, 3));
            Assert.StartsWith(path + ": could not write the file", e.Message);
            Assert.Contains("previous file there is unchanged", e.Message);
        }

        Assert.Equal(previous, File.ReadAllBytes(path));
        Assert.Equal(["adapter.safetensors"], Directory.GetFileSystemEntries(folder).Select(Path.GetFileName));
    }

    /// <summary>
    /// Makes <paramref name="folder"/> refuse new files until disposed. Mode 0555 is enough for ordinary users;
    /// root (as in CI) ignores it, so then the folder is also made immutable with chattr +i.
    /// </summary>
    private static IDisposable ReadOnly(string folder)
    {
        if (OperatingSystem.IsWindows())
        {
            throw new PlatformNotSupportedException("this test uses POSIX permissions");
        }
        UnixFileMode mode = File.GetUnixFileMode(folder);
        File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        bool immutable = false;
        if (CanCreateFileIn(folder))
        {
            immutable = Chattr("+i", folder);
        }
        var restore = new Restore(() =>
        {
            if (immutable) Chattr("-i", folder);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(folder, mode);
        });
        if (CanCreateFileIn(folder))
        {
            restore.Dispose();
            throw new SkipException($"cannot make {folder} read-only here (mode 0555 is ignored and chattr +i failed); this test needs one of them");
        }
        return restore;
    }

    private static bool CanCreateFileIn(string folder)
    {
        string probe = Path.Combine(folder, ".probe");
        try
        {
            File.WriteAllText(probe, "");
            File.Delete(probe);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static bool Chattr(string flag, string folder)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("chattr", [flag, folder]) { RedirectStandardError = true, RedirectStandardOutput = true });
            process!.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            return false; // chattr not installed
        }
    }

    private sealed class Restore(Action undo) : IDisposable
    {
        private Action? _undo = undo;

        public void Dispose()
        {
            _undo?.Invoke();
            _undo = null;
        }
    }
}
