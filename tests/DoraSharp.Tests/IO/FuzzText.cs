using System.Text;
using System.Text.RegularExpressions;

namespace DoraSharp.Tests.IO;

/// <summary>Mutation helpers shared by the safetensors and adapter fuzz tests.</summary>
internal static class FuzzText
{
    /// <summary>Splits a safetensors file into header text and data buffer; false when the length prefix is unusable.</summary>
    public static bool TrySplit(byte[] file, out string header, out byte[] buffer)
    {
        header = "";
        buffer = [];
        if (file.Length < 8) return false;
        ulong length = BitConverter.ToUInt64(file);
        if (length > (ulong)(file.Length - 8)) return false;
        header = Encoding.UTF8.GetString(file, 8, (int)length);
        buffer = file[(8 + (int)length)..];
        return true;
    }

    /// <summary>Replaces one randomly chosen match of <paramref name="pattern"/>; the text unchanged when none.</summary>
    public static string ReplaceRandomMatch(string text, Regex pattern, string replacement, Random random)
    {
        MatchCollection matches = pattern.Matches(text);
        if (matches.Count == 0) return text;
        Match match = matches[random.Next(matches.Count)];
        return string.Concat(text.AsSpan(0, match.Index), replacement, text.AsSpan(match.Index + match.Length));
    }
}
