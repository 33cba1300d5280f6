using System.Text.RegularExpressions;
using Xunit;

namespace DoraSharp.Tests.Injection;

/// <summary>
/// <see cref="PythonRegex"/> against CPython's <c>re</c>, the reference PEFT uses (<c>re.fullmatch(target_modules, key)</c>).
/// </summary>
/// <remarks>
/// The expected values were produced by CPython 3.11.7's <c>re.fullmatch(pattern, subject) is not None</c> (and,
/// for the refusals, <c>re.compile(pattern)</c> raising <c>re.error</c>) with a small generator script run once
/// while writing this test; Python is the reference here, not the code under test. The table covers the places
/// where Python's and .NET's regex dialects differ: verbose comments (issue 13, defect 6), fullmatch and
/// <c>$</c>/<c>\Z</c>, Unicode <c>\w</c>/<c>\s</c>/<c>\b</c>, <c>(?a)</c>, named groups and their numbering, brace
/// quantifiers such as <c>{,2}</c>, possessive quantifiers, octal escapes, scoped flags, conditionals, and
/// IGNORECASE (Python's extra equivalences such as s/ſ, and <c>(?ai)</c>, which folds ASCII letters only).
/// </remarks>
public sealed class PythonRegexTests
{
    public static TheoryData<string, string, bool> PythonFullMatch() => new()
    {
        { "(?x)layers\\.[024] # all linear", "layers.0", true },
        { "(?x)layers\\.[024] # all linear", "layers.2", true },
        { "(?x)layers\\.[024] # all linear", "layers.4", true },
        { "(?x)layers\\.[024] # all linear", "layers.1", false },
        { "(?x)layers\\.[024] # all linear", "layers.0 # all linear", false },
        { "(?x) layers \\. [0 2]  # a class keeps its space", "layers. ", true },
        { "(?x) layers \\. [0 2]  # a class keeps its space", "layers.0", true },
        { "(?x) layers \\. [0 2]  # a class keeps its space", "layers.2", true },
        { "(?x) layers \\. [0 2]  # a class keeps its space", "layers.1", false },
        { "(?x)layers\\.\\ 0", "layers. 0", true },
        { "(?x)layers\\.\\ 0", "layers.0", false },
        { "layers\\.\\d+$", "layers.10", true },
        { "layers\\.\\d+$", "layers.1\u000A", false },
        { "layers\\.\\d+$", "layers.\u0663", true },
        { "layers\\.\\d+$", "layers.", false },
        { "(?a)layers\\.\\d", "layers.3", true },
        { "(?a)layers\\.\\d", "layers.\u0663", false },
        { "\\w+", "e_1", true },
        { "\\w+", "\u00E9", true },
        { "\\w+", "a\u0301", false },
        { "\\w+", "a\u203Fb", false },
        { "\\w+", "\u216B", true },
        { "\\w+", "\u00B2", true },
        { "(?a)\\w+", "abc_1", true },
        { "(?a)\\w+", "\u00E9", false },
        { "\\W", "\u0301", true },
        { "\\W", "\u203F", true },
        { "\\W", "-", true },
        { "\\W", "a", false },
        { "\\s", "\u001C", true },
        { "\\s", "\u001F", true },
        { "\\s", "\u0085", true },
        { "\\s", " ", true },
        { "\\s", "\u00A0", true },
        { "\\s", "a", false },
        { "(?a)\\s", "\u001C", false },
        { "(?a)\\s", "\u0085", false },
        { "(?a)\\s", " ", true },
        { "(?a)\\s", "\u0009", true },
        { "\\S", "\u001C", false },
        { "\\S", "a", true },
        { "a\\Z", "a", true },
        { "a\\Z", "a\u000A", false },
        { "a$", "a", true },
        { "a$", "a\u000A", false },
        { "a$\u000A", "a\u000A", true },
        { "a$\u000A", "a", false },
        { "(?P<blk>block\\d)\\.(?P=blk)", "block1.block1", true },
        { "(?P<blk>block\\d)\\.(?P=blk)", "block1.block2", false },
        { "(?P<x>a)(b)\\2", "abb", true },
        { "(?P<x>a)(b)\\2", "aba", false },
        { "(a)(b)\\2\\1", "abba", true },
        { "(a)(b)\\2\\1", "abab", false },
        { "a{,2}", "", true },
        { "a{,2}", "aa", true },
        { "a{,2}", "aaa", false },
        { "a{,}", "", true },
        { "a{,}", "aaaa", true },
        { "a{2}", "aa", true },
        { "a{2}", "a", false },
        { "a{}", "a{}", true },
        { "a{}", "a", false },
        { "a{x}", "a{x}", true },
        { "a{1,2", "a{1,2", true },
        { "(?i)LAYERS\\.0", "layers.0", true },
        { "(?i)LAYERS\\.0", "LaYeRs.0", true },
        { "(?i)k", "K", true },
        { "(?i)k", "k", true },
        { "(?i)k", "\u212A", true },
        { "(?i)s", "S", true },
        { "(?i)s", "\u017F", true },
        { "(?i)\\u00e9", "\u00C9", true },
        { "(?i)\\u00e9", "\u00E9", true },
        { "(?s)a.b", "a\u000Ab", true },
        { "(?s)a.b", "axb", true },
        { "a.b", "a\u000Ab", false },
        { "a.b", "axb", true },
        { "(?m)a$\\n^b", "a\u000Ab", true },
        { "\\bfc\\b", "fc", true },
        { "a\\b\\u0301", "a\u0301", true },
        { "a\\B\\u0301", "a\u0301", false },
        { "fc\\B", "fc", false },
        { "a*+a", "aaa", false },
        { "a*+a", "a", false },
        { "(?:ab)++", "abab", true },
        { "layers\\.\\d++\\.fc", "layers.12.fc", true },
        { "(?>a|ab)c", "abc", false },
        { "(?>a|ab)c", "ac", true },
        { "[]a]+", "]a]", true },
        { "[]a]+", "b", false },
        { "[^]a]", "b", true },
        { "[^]a]", "]", false },
        { "[^]a]", "a", false },
        { "[+-[]", "+", true },
        { "[+-[]", "[", true },
        { "[+-[]", ",", true },
        { "[+-[]", "-", true },
        { "[+-[]", "a", false },
        { "[a-]", "-", true },
        { "[a-]", "a", true },
        { "[a-]", "b", false },
        { "[\\w-]+", "a-b", true },
        { "[\\w-]+", "a.b", false },
        { "[\\d\\s]+", "1 2", true },
        { "[\\d\\s]+", "1a", false },
        { "[\\W]", "-", true },
        { "[\\W]", "a", false },
        { "[^\\W]", "-", false },
        { "[^\\W]", "a", true },
        { "[^\\s]", " ", false },
        { "[^\\s]", "\u001C", false },
        { "[^\\s]", "a", true },
        { "[\\b]", "\u0008", true },
        { "[\\b]", "b", false },
        { "\\x41\\u0042\\103\\U00000044", "ABCD", true },
        { "\\0", "\u0000", true },
        { "\\012", "\u000A", true },
        { "[\\101-\\103]+", "ABC", true },
        { "[\\101-\\103]+", "D", false },
        { "\\.\\-\\ \\#", ".- #", true },
        { "(?x:a b)c d", "abc d", true },
        { "(?x:a b)c d", "abcd", false },
        { "(?x)a(?-x: b)", "a b", true },
        { "(?x)a(?-x: b)", "ab", false },
        { "(?i:a)b", "Ab", true },
        { "(?i:a)b", "AB", false },
        { "(?i)a(?-i:b)", "Ab", true },
        { "(?i)a(?-i:b)", "AB", false },
        { "(a)(?(1)b|c)", "ab", true },
        { "(a)(?(1)b|c)", "ac", false },
        { "(a)?(?(1)b|c)", "c", true },
        { "(a)?(?(1)b|c)", "ab", true },
        { "(a)?(?(1)b|c)", "b", false },
        { "(?P<n>a)?(?(n)b|c)", "c", true },
        { "(?P<n>a)?(?(n)b|c)", "ab", true },
        { "a(?#comment)*", "aaa", true },
        { "a(?#comment)*", "a", true },
        { "(?#c)(?i)a", "A", true },
        { "(?=layers)layers\\.\\d", "layers.1", true },
        { "(?!x).", "x", false },
        { "(?!x).", "y", true },
        { "(?<=a)b|ab", "ab", true },
        { ".*\\.(q|v)_proj", "model.layers.0.self_attn.q_proj", true },
        { ".*\\.(q|v)_proj", "model.layers.0.self_attn.o_proj", false },
        { ".*\\.(q|v)_proj", "v_proj", false },
        { ".*(q_proj|v_proj)$", "model.layers.0.self_attn.v_proj", true },
        { "a|b|", "", true },
        { "a|b|", "a", true },
        { "a|b|", "c", false },
        { "(?u)\\w", "\u00E9", true },
        { "encoder\\.layer\\.\\d+\\.attention\\.self\\.(query|value)", "encoder.layer.11.attention.self.query", true },
        { "encoder\\.layer\\.\\d+\\.attention\\.self\\.(query|value)", "encoder.layer.1.attention.self.key", false },
        { "^layers\\.0$", "layers.0", true },
        { "\\Alayers\\.0\\Z", "layers.0", true },
        { "(?:a|ab)(?:c|bcd)(d*)", "abcd", true },
        { "(?:a|ab)(?:c|bcd)(d*)", "abcdd", true },
        { "{", "{", true },
        { "}", "}", true },
        { "]", "]", true },
        { "a{3,5}?", "aaaa", true },
        { "(?s:.)\\n", "\u000A\u000A", true },
        { "(?i)[r-t]", "\u017F", true },
        { "(?i)[r-t]", "S", true },
        { "(?i)i", "\u0131", true },
        { "(?i)i", "\u0130", true },
        { "(?i)i", "I", true },
        { "(?i)[i]", "\u0131", true },
        { "(?i)[i]", "\u0130", true },
        { "(?i)\\u03c3", "\u03C2", true },
        { "(?i)\\u03c3", "\u03A3", true },
        { "(?i:s)", "\u017F", true },
        { "(?i)\\u00b5", "\u03BC", true },
        { "(?i)\\u00b5", "\u039C", true },
        { "(?ai)k", "K", true },
        { "(?ai)k", "\u212A", false },
        { "(?ai)\\u00e9", "\u00C9", false },
        { "(?ai)\\u00e9", "\u00E9", true },
        { "(?ai)[a-c]+", "AbC", true },
        { "(?ai)[a-c]+", "abd", false },
        { "(?ai)[^a]", "A", false },
        { "(?ai)[^a]", "b", true },
        { "(?ai)[j-l]", "\u212A", false },
        { "(?ai)[j-l]", "K", true },
        { "(?ai)s", "\u017F", false },
        { "(?ai)s", "S", true },
        { "(?i)(a)\\1", "aA", true },
    };

    [Theory]
    [MemberData(nameof(PythonFullMatch))]
    public void Matches_as_Pythons_re_fullmatch(string pattern, string subject, bool expected)
    {
        Regex regex = PythonRegex.FullMatch(pattern, TimeSpan.FromSeconds(10));
        Assert.True(expected == regex.IsMatch(subject),
            $"re.fullmatch({Show(pattern)}, {Show(subject)}) is {(expected ? "a match" : "None")} in Python; the translation {regex} says {!expected}");
    }

    /// <summary>Patterns CPython 3.11 refuses with re.error: DoraSharp refuses them too, rather than guessing a meaning.</summary>
    [Theory]
    [InlineData("a(?x)b")]
    [InlineData("(?<n>a)")]
    [InlineData("\\z")]
    [InlineData("\\b*")]
    [InlineData("^*")]
    [InlineData("[\\d-z]")]
    [InlineData("(?L)a")]
    [InlineData("(?P<a>x(?P=a))")]
    [InlineData("\\8")]
    [InlineData("[\\8]")]
    [InlineData("\\400")]
    [InlineData("(a)\\10")]
    [InlineData("(?(1)a|b)")]
    [InlineData("(a)(?(1)a|b|c)")]
    [InlineData("\\e")]
    [InlineData("\\p{L}")]
    [InlineData("\\cA")]
    [InlineData("\\G")]
    [InlineData("\\k<a>")]
    [InlineData("a{2,1}")]
    [InlineData("[z-a]")]
    [InlineData("\\x4")]
    [InlineData("\\u004")]
    [InlineData("(?i:a)(?i)b")]
    [InlineData("a**")]
    [InlineData("(")]
    [InlineData(")")]
    [InlineData("[a")]
    [InlineData("(?P<1a>x)")]
    [InlineData("(?P<a>x)(?P<a>y)")]
    [InlineData("(?P=b)")]
    [InlineData("(?-a:x)")]
    [InlineData("(?au)x")]
    [InlineData("(?Px)")]
    [InlineData("(?")]
    [InlineData("(?x:a # c\u000A")]
    [InlineData("a\\")]
    public void Patterns_Python_refuses_are_refused(string pattern)
    {
        var e = Assert.Throws<PythonRegexException>(() => PythonRegex.Validate(pattern));
        Assert.Contains("position", e.Message);
    }

    /// <summary>Valid in Python but without a faithful .NET translation: refused naming the construct.</summary>
    [Theory]
    [InlineData("\\N{LATIN SMALL LETTER A}")]
    [InlineData("[\U0001F600]")]
    [InlineData("[a\\W]")]
    [InlineData("[^\\S\\d]")]
    [InlineData("(?a)[\\D_]")]
    public void Constructs_without_a_faithful_translation_are_refused_by_name(string pattern)
    {
        var e = Assert.Throws<PythonRegexException>(() => PythonRegex.Validate(pattern));
        Assert.Matches(@"\\N\{|U\+FFFF|negated class escape", e.Message);
    }

    [Fact]
    public void The_verbose_pattern_from_the_issue_selects_the_modules_Python_selects()
    {
        // Before the translation, "^(?:" + pattern + ")$" put the closing parenthesis inside the x-mode comment and
        // .NET threw RegexParseException.
        var config = new LoraConfig { TargetModulesRegex = "(?x)layers\\.[024] # all linear" };
        config.Validate();
        var lora = LoraModel.Wrap(new Mlp(), config);
        Assert.Equal(["layers.0", "layers.2", "layers.4"], lora.Layers.Keys);
    }

    [Fact]
    public void A_config_regex_Python_refuses_is_refused_by_Validate()
    {
        var e = Assert.Throws<LoraConfigException>((new LoraConfig { TargetModulesRegex = "layers\\.\\p{N}" }).Validate);
        Assert.Equal("TargetModulesRegex", e.Option);
        Assert.Contains("bad escape \\p", e.Message);
    }

    [Fact]
    public void A_module_path_beyond_the_BMP_is_refused_rather_than_matched_differently()
    {
        var matcher = new TargetMatcher(new LoraConfig { TargetModulesRegex = "layers\\..*" });
        Assert.True(matcher.MatchesTarget("layers.0"));
        var e = Assert.Throws<LoraConfigException>(() => matcher.MatchesTarget("layers.\U0001F600"));
        Assert.Contains("beyond U+FFFF", e.Message);
    }

    private static string Show(string s) => "'" + string.Concat(s.Select(c => c is >= ' ' and < (char)127 ? c.ToString() : $"\\u{(int)c:x4}")) + "'";
}
