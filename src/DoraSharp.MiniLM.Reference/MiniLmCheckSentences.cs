namespace DoraSharp.MiniLM.Reference;

/// <summary>
/// A fixed, varied set of sentences for comparing the encoder with ONNX Runtime: very short and very long
/// (past 128 word pieces, so truncation happens), punctuation, numbers, code and paths, accents, non-Latin
/// scripts, CJK, emoji, odd whitespace, and an empty string. Mixed lengths make every batch padded.
/// </summary>
public static class MiniLmCheckSentences
{
    /// <summary>The sentences, in a fixed order.</summary>
    public static IReadOnlyList<string> All { get; } =
    [
        "",
        "Hi",
        "OK.",
        "?!",
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "A woman is playing violin.",
        "Two men pushed carts through the woods.",
        "A man is riding a white horse on an enclosed ground.",
        "A monkey is playing drums.",
        "Someone in a gorilla costume is playing a set of drums.",
        "The new movie is awesome",
        "The cat sits outside",
        "I love pasta",
        "Do you like pizza?",
        "The quick brown fox jumps over the lazy dog.",
        "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG!!!",
        "tHe QuIcK bRoWn FoX",
        "Hello, world! How's it going? (Fine, thanks.) — really; truly: yes...",
        "\"Quoted\" 'text' with «guillemets» and „low quotes“.",
        "Email me at someone@example.org or visit https://example.org/path?q=1&r=2#frag.",
        "The price rose 3.5% to $1,234.56 on 2024-09-15 at 14:30 UTC.",
        "Pi is approximately 3.14159265358979, and e is about 2.71828.",
        "Room 101, floor -2, code 0x1F, build #4521, version v2.10.0-rc1.",
        "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "int main(void) { return printf(\"%d\\n\", 42) > 0 ? 0 : 1; }",
        "/usr/lib/x86_64-linux-gnu/libstdc++.so.6 provides GLIBCXX_3.4.32",
        "apt-get install --no-install-recommends python3-numpy libopenblas0",
        "Café, naïve, résumé, façade, coöperate, jalapeño.",
        "Straße und Größe: Übung macht den Meister.",
        "¿Dónde está la biblioteca? ¡Aquí!",
        "Ça va très bien, merci beaucoup.",
        "Москва — столица России.",
        "Η γρήγορη καφέ αλεπού.",
        "مرحبا بالعالم",
        "שלום עולם",
        "नमस्ते दुनिया",
        "東京は日本の首都です。",
        "我爱自然语言处理。",
        "안녕하세요 세계",
        "ภาษาไทย",
        "Emoji test 😀👍🏽🚀 and a heart ❤️.",
        "Math: ∑ x² ≤ ∞, α + β = γ, √2 ≈ 1.414.",
        "Tabs\tand\tnew\nlines\r\nand   many    spaces.",
        "   leading and trailing whitespace   ",
        "Zero\u200Bwidth and non\u00A0breaking spaces.",
        "[CLS] special [SEP] tokens [MASK] in [PAD] text [UNK]",
        "supercalifragilisticexpialidocious antidisestablishmentarianism",
        "pneumonoultramicroscopicsilicovolcanoconiosis",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "GNU C Library: Shared libraries. Contains the standard libraries that are used by nearly all programs on the system.",
        "This package provides the development files needed to build programs against the library.",
        "A command-line utility to manage network interfaces and routing tables.",
        "Python 3 bindings for the library, allowing scripts to call its functions directly.",
        "Administration tool for system services, with support for logging and monitoring.",
        "Documentation in HTML format, including the API reference and a tutorial.",
        "Yes.",
        "No!",
        "Maybe...",
        "Why not?",
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of foolishness, " +
        "it was the epoch of belief, it was the epoch of incredulity, it was the season of Light, it was the season of " +
        "Darkness, it was the spring of hope, it was the winter of despair, we had everything before us, we had nothing " +
        "before us, we were all going direct to Heaven, we were all going direct the other way.",
        string.Join(" ", Enumerable.Range(1, 150).Select(i => $"word{i}")),
        string.Concat(Enumerable.Repeat("Long sentences are truncated to the maximum length in word pieces. ", 20)),
        "The library implements low-rank adaptation: a frozen weight W plus a trainable product B A of rank r, scaled by alpha / r.",
        "DoRA decomposes the weight into a magnitude vector and a direction, and adapts the direction with LoRA.",
        "Mixed: English, Français, Deutsch, 日本語, Русский, العربية, and 123 numbers!",
        "end.",
        "The weather today is sunny with a chance of rain in the evening, and temperatures around 21 degrees Celsius.",
        "Kernel modules for the Linux operating system, built for 64-bit PCs.",
        "x",
    ];
}
