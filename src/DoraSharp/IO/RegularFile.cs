using System.Runtime.InteropServices;
using System.Text;

namespace DoraSharp.IO;

/// <summary>
/// Tells whether a path is a regular file before DoraSharp opens it. Opening a FIFO for reading blocks until a
/// writer appears (forever, if none does), and a character device such as /dev/zero or /dev/urandom never ends, so
/// every file the library reads — adapter config and tensors, base weights, checkpoints, phase records, datasets —
/// is checked first and anything else is refused by name.
/// </summary>
/// <remarks>
/// <para>Symbolic links are followed: a link to a regular file is read as that file (PEFT, Hugging Face caches and
/// <c>ln -s</c>'d adapters rely on it); a link to anything else is refused like its target.</para>
/// <para>.NET has no public API for the file type on Unix (<see cref="FileAttributes"/> only knows directories), so
/// this asks .NET's own native shim, <c>libSystem.Native</c>, which every .NET runtime on Linux and macOS ships and
/// which .NET's <c>FileStream</c> itself uses: <c>SystemNative_Stat</c> fills a <c>FileStatus</c> whose second
/// 32-bit field is the mode with POSIX's file-type bits (the shim normalises them, so the constants hold on every
/// Unix). Only that field is read; the buffer is larger than the struct so a future field cannot overrun it. Where
/// the shim cannot be reached, only directories are recognised (as on Windows, where FIFOs do not live in the file
/// system).</para>
/// <para>The check and the open are two steps, so a file replaced in between is not caught; it guards against
/// mistakes and hostile directory contents, not against a race with another process.</para>
/// </remarks>
internal static class RegularFile
{
    private const int TypeMask = 0xF000;
    private const int Regular = 0x8000;
    private static bool s_nativeUnavailable;

    /// <summary>
    /// What <paramref name="path"/> is when it exists and is not a regular file (after following symbolic links),
    /// e.g. "a FIFO (named pipe)"; null for a regular file, or when the path does not exist or cannot be examined
    /// (opening it then fails with the usual error).
    /// </summary>
    public static string? NonRegularKind(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path)) return "a directory";
        if (OperatingSystem.IsWindows() || s_nativeUnavailable) return null;
        int mode;
        try
        {
            mode = Mode(path);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            s_nativeUnavailable = true;
            return null;
        }
        if (mode < 0) return null;
        return (mode & TypeMask) switch
        {
            Regular => null,
            0x1000 => "a FIFO (named pipe)",
            0x2000 => "a character device",
            0x4000 => "a directory",
            0x6000 => "a block device",
            0xC000 => "a socket",
            int other => $"not a regular file (file type 0x{other:X4})",
        };
    }

    /// <summary>
    /// Throws <paramref name="refuse"/>(problem) when <paramref name="path"/> exists and is not a regular file; the
    /// problem reads "is a FIFO (named pipe), not a regular file; …", to follow the path in a message.
    /// </summary>
    public static void Check(string path, Func<string, Exception> refuse)
    {
        if (NonRegularKind(path) is { } kind)
        {
            throw refuse($"is {kind}{(kind.StartsWith("not ", StringComparison.Ordinal) ? "" : ", not a regular file")}; " +
                "DoraSharp reads only regular files (or symbolic links to them), since reading a FIFO or device can block forever or never end");
        }
    }

    /// <summary>The file's mode (type and permission bits) after following links, or -1 when it cannot be examined.</summary>
    private static int Mode(string path)
    {
        byte[] utf8 = new byte[Encoding.UTF8.GetByteCount(path) + 1]; // NUL-terminated
        Encoding.UTF8.GetBytes(path, utf8);
        byte[] status = new byte[512]; // FileStatus is about 120 bytes; Mode is the int32 at offset 4
        return Stat(utf8, status) == 0 ? BitConverter.ToInt32(status, 4) : -1;
    }

    // Blittable arguments only (byte arrays are pinned and passed as pointers), so no runtime marshalling is needed
    // and the call works under trimming and native AOT, where System.Native is linked in.
    [DllImport("libSystem.Native", EntryPoint = "SystemNative_Stat", ExactSpelling = true)]
    private static extern int Stat(byte[] path, [Out] byte[] status);
}
