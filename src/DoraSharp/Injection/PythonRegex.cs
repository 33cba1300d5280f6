using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace DoraSharp;

/// <summary>
/// PEFT's <c>target_modules</c> given as a string is a Python regular expression matched with
/// <c>re.fullmatch(target_modules, key)</c>. This translates it into a .NET <see cref="Regex"/> with the same
/// meaning, or refuses it naming the construct that has no faithful translation. The reference is CPython 3.11's
/// <c>re</c> on <c>str</c> patterns.
/// </summary>
/// <remarks>
/// <para>The translation parses the pattern as <c>sre_parse</c> does and writes an equivalent .NET pattern:</para>
/// <list type="bullet">
/// <item>Full match: the result is wrapped as <c>\A(?:…)\z</c>. Verbose mode (<c>(?x)</c>) is applied by the
/// translator (whitespace and <c>#</c> comments are dropped), so no comment can swallow the wrapper's closing
/// parenthesis, and <c>$</c> keeps Python's meaning (end, or before a final newline, which fullmatch must still
/// consume).</item>
/// <item>Flags: global flags (<c>(?aimsux)</c>) only at the start, as Python 3.11 requires; <c>i</c>, <c>m</c>,
/// <c>s</c> map to .NET's options, <c>x</c> and <c>a</c> are applied by the translator, <c>u</c> is the default and
/// <c>L</c> (bytes patterns only) is refused, as Python refuses it. Scoped flags <c>(?i-s:…)</c> likewise.</item>
/// <item>Classes of characters: Python's <c>\w</c> is <c>[\p{L}\p{N}_]</c> (str.isalnum plus underscore; .NET's
/// also takes combining marks and connector punctuation), <c>\s</c> adds U+001C–U+001F to .NET's <c>\s</c>,
/// <c>\d</c> is the same (Unicode decimal digits); <c>\b</c>/<c>\B</c> are rebuilt on Python's <c>\w</c>; with
/// <c>(?a)</c> they are ASCII-only. A negated class escape (<c>\W</c>, <c>\S</c>, ASCII <c>\D</c>) inside a
/// <c>[…]</c> with other items has no .NET form and is refused.</item>
/// <item>Groups: every capturing group gets its Python number explicitly (<c>(?&lt;3&gt;…)</c>), since .NET numbers
/// named groups after the unnamed ones; <c>(?P&lt;name&gt;…)</c>, <c>(?P=name)</c>, <c>\1</c> and
/// <c>(?(1)…|…)</c> are rewritten to .NET's forms. Python's other syntax errors (bad escapes such as <c>\p</c>,
/// <c>\e</c>, <c>\z</c>; references to open or missing groups; bad ranges) are refused as Python refuses them.</item>
/// <item><c>a{,n}</c> (Python: 0 to n) becomes <c>a{0,n}</c>; a brace that is not a quantifier is a literal.
/// Possessive quantifiers (<c>a*+</c>, Python 3.11) become atomic groups. <c>\Z</c> becomes .NET's <c>\z</c>
/// (end of string only), <c>\N{name}</c> is refused (.NET has no character-name table).</item>
/// <item>Python matches code points, .NET UTF-16 code units: a pattern character beyond U+FFFF inside <c>[…]</c> is
/// refused, and <see cref="TargetMatcher"/> refuses module paths holding such characters (module names are
/// identifiers, so this never happens in practice).</item>
/// <item>IGNORECASE is applied by the translator, as sre does: a character matches when its simple lowercase equals a
/// member's lowercase or one of Python's extra equivalents (<c>re._casefix</c>: s/ſ, i/ı, µ/μ, σ/ς …), so each
/// literal and set is written out as the set of such characters; with <c>(?a)</c> only ASCII letters fold. .NET's
/// own IgnoreCase (whose table differs, e.g. for İ) is used only for back references.</item>
/// </list>
/// <para>Not reproduced: the fixed-width check of look-behinds (.NET accepts variable widths Python refuses), and
/// differences between the Unicode versions of the two runtimes' character tables.</para>
/// </remarks>
internal static class PythonRegex
{
    private const string PyWordClass = @"\p{L}\p{N}_";
    private const string AsciiWordClass = "a-zA-Z0-9_";
    private const string PySpaceClass = @"\s\u001C-\u001F";
    private const string AsciiSpaceClass = @" \t\n\r\f\v";

    /// <summary>
    /// CPython 3.11's <c>re._casefix._EXTRA_CASES</c>: lowercase characters IGNORECASE treats as equal beyond the simple
    /// case mapping (e.g. s and ſ, i and ı, μ and µ), which .NET's IgnoreCase does not know.
    /// </summary>
    /// <summary>
    /// Unicode's simple lowercase mapping, which Python's <c>str.lower</c> of one character and sre use. .NET's invariant
    /// casing is the same except that it leaves U+0130 (İ) alone, to keep Turkish casing out; Unicode maps it to 'i'.
    /// </summary>
    private static char SimpleLower(char c) => c == '\u0130' ? 'i' : char.ToLowerInvariant(c);

    /// <summary>For each lowercase character, the other characters whose simple lowercase it is (e.g. 'k' ← 'K', U+212A).</summary>
    private static readonly Lazy<Dictionary<char, List<char>>> LowercasePreimages = new(() =>
    {
        var map = new Dictionary<char, List<char>>();
        for (int c = 0; c <= 0xFFFF; c++)
        {
            if (char.IsSurrogate((char)c)) continue;
            char lower = SimpleLower((char)c);
            if (lower == c) continue;
            if (!map.TryGetValue(lower, out List<char>? list)) map[lower] = list = [];
            list.Add((char)c);
        }
        return map;
    });

    private static readonly Dictionary<char, int[]> ExtraCases = new()
    {
        [(char)105] = [305], [(char)115] = [383], [(char)181] = [956], [(char)305] = [105], [(char)383] = [115],
        [(char)837] = [953, 8126], [(char)912] = [8147], [(char)944] = [8163], [(char)946] = [976], [(char)949] = [1013],
        [(char)952] = [977], [(char)953] = [837, 8126], [(char)954] = [1008], [(char)956] = [181], [(char)960] = [982],
        [(char)961] = [1009], [(char)962] = [963], [(char)963] = [962], [(char)966] = [981], [(char)976] = [946],
        [(char)977] = [952], [(char)981] = [966], [(char)982] = [960], [(char)1008] = [954], [(char)1009] = [961],
        [(char)1013] = [949], [(char)1074] = [7296], [(char)1076] = [7297], [(char)1086] = [7298], [(char)1089] = [7299],
        [(char)1090] = [7300, 7301], [(char)1098] = [7302], [(char)1123] = [7303], [(char)7296] = [1074], [(char)7297] = [1076],
        [(char)7298] = [1086], [(char)7299] = [1089], [(char)7300] = [1090, 7301], [(char)7301] = [1090, 7300], [(char)7302] = [1098],
        [(char)7303] = [1123], [(char)7304] = [42571], [(char)7777] = [7835], [(char)7835] = [7777], [(char)8126] = [837, 953],
        [(char)8147] = [912], [(char)8163] = [944], [(char)42571] = [7304], [(char)64261] = [64262], [(char)64262] = [64261],
    };

    /// <summary>
    /// The .NET regex that accepts exactly the strings <c>re.fullmatch(<paramref name="pattern"/>, s)</c> accepts.
    /// </summary>
    /// <exception cref="PythonRegexException">The pattern is not valid in Python, or uses a construct with no faithful .NET translation.</exception>
    public static Regex FullMatch(string pattern, TimeSpan matchTimeout)
    {
        (string translated, RegexOptions options) = Translate(pattern);
        try
        {
            return new Regex($@"\A(?:{translated})\z", options | RegexOptions.CultureInvariant, matchTimeout);
        }
        catch (ArgumentException e)
        {
            // The translator emits only constructs .NET knows; what remains are errors both engines share.
            throw new PythonRegexException($"not a valid regular expression ({e.Message})", e);
        }
    }

    /// <summary>Checks <paramref name="pattern"/> as <see cref="FullMatch"/> does, without keeping the regex.</summary>
    public static void Validate(string pattern) => FullMatch(pattern, Regex.InfiniteMatchTimeout);

    /// <summary>The .NET pattern (without the full-match wrapper) and global options for a Python pattern.</summary>
    internal static (string Pattern, RegexOptions Options) Translate(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        var translator = new Translator(pattern);
        return (translator.Run(), translator.GlobalOptions);
    }

    private sealed class Translator(string p)
    {
        private readonly StringBuilder _o = new();
        private readonly Dictionary<string, int> _names = new(StringComparer.Ordinal);
        private readonly Dictionary<int, string> _groupRef = new();   // Python group number → .NET reference
        private readonly HashSet<int> _open = [];
        private int _i;
        private int _groups;
        private bool _verbose;
        private bool _ascii;
        private bool _ignoreCase;
        private bool _seenItem;

        public RegexOptions GlobalOptions { get; private set; }

        public string Run()
        {
            ParseSequence(depth: 0, out _);
            if (_i < p.Length) throw Error("unbalanced parenthesis", _i);
            return _o.ToString();
        }

        private PythonRegexException Error(string what, int at) =>
            new($"{what} at position {at}");

        /// <summary>Parses items until ')' (left unread) or the end; returns the number of top-level '|'.</summary>
        private void ParseSequence(int depth, out int alternatives)
        {
            alternatives = 0;
            int lastAtom = -1;   // where the last quantifiable item starts in _o, or -1
            while (_i < p.Length)
            {
                char c = p[_i];
                if (_verbose)
                {
                    if (c is ' ' or '\t' or '\n' or '\r' or '\v' or '\f') { _i++; continue; }
                    if (c == '#')
                    {
                        while (_i < p.Length && p[_i] != '\n') _i++;
                        continue;
                    }
                }
                int start = _o.Length;
                switch (c)
                {
                    case ')':
                        if (depth == 0) throw Error("unbalanced parenthesis", _i);
                        return;
                    case '|':
                        _i++;
                        _o.Append('|');
                        alternatives++;
                        lastAtom = -1;
                        _seenItem = true;
                        continue;
                    case '*' or '+' or '?':
                        Quantifier(c.ToString(), ref lastAtom);
                        continue;
                    case '{':
                        if (TryBraceQuantifier(out string? braces))
                        {
                            Quantifier(braces!, ref lastAtom);
                            continue;
                        }
                        _i++;
                        Literal('{');
                        lastAtom = start;
                        break;
                    case '^' or '$':
                        _i++;
                        _o.Append(c);
                        lastAtom = -1;   // Python: "nothing to repeat" after an anchor
                        break;
                    case '.':
                        _i++;
                        _o.Append('.');
                        lastAtom = start;
                        break;
                    case '[':
                        ParseClass();
                        lastAtom = start;
                        break;
                    case '(':
                        // A comment or a global flag group is not an item: "(?x)(?i)…" is still "at the start",
                        // and in "a(?#c)*" the star repeats the a.
                        if (ParseGroup(depth, start)) lastAtom = start;
                        else continue;
                        break;
                    case '\\':
                        lastAtom = ParseEscape(start) ? start : -1;
                        break;
                    default:
                        int codePoint = ReadCodePoint();
                        if (codePoint > 0xFFFF) _o.Append("(?:");
                        Literal(codePoint);
                        if (codePoint > 0xFFFF) _o.Append(')');
                        lastAtom = start;
                        break;
                }
                _seenItem = true;
            }
        }

        private int ReadCodePoint()
        {
            if (char.IsHighSurrogate(p[_i]) && _i + 1 < p.Length && char.IsLowSurrogate(p[_i + 1]))
            {
                int cp = char.ConvertToUtf32(p[_i], p[_i + 1]);
                _i += 2;
                return cp;
            }
            return p[_i++];
        }

        private void Literal(int codePoint)
        {
            if (_ignoreCase && codePoint <= 0xFFFF)
            {
                // Python's IGNORECASE, spelled out as the set of characters that fold to the same (CaseFolded).
                var set = new SortedSet<int>();
                AddFolded(set, codePoint, codePoint);
                if (set.Count > 1)
                {
                    _o.Append(SetText(set, negate: false));
                    return;
                }
            }
            if (codePoint > 0xFFFF)
            {
                string pair = char.ConvertFromUtf32(codePoint);
                _o.Append($@"\u{(int)pair[0]:X4}\u{(int)pair[1]:X4}");
            }
            else
            {
                _o.Append($@"\u{codePoint:X4}");
            }
        }

        private static string Escape(int codePoint) => $@"\u{codePoint:X4}";

        /// <summary>
        /// Adds to <paramref name="set"/> every character that Python's IGNORECASE makes equal to one of [lo, hi]: with
        /// (?a), the other case of ASCII letters only; otherwise every x whose simple lowercase is the lowercase of a member
        /// or one of its extra equivalents (re._casefix), which is how sre matches LITERAL_UNI_IGNORE and IN_UNI_IGNORE.
        /// </summary>
        private void AddFolded(SortedSet<int> set, int lo, int hi)
        {
            for (int c = lo; c <= hi; c++)
            {
                set.Add(c);
                if (!_ignoreCase) continue;
                if (_ascii)
                {
                    if (char.IsAsciiLetter((char)c)) set.Add(c ^ 0x20);
                    continue;
                }
                char lower = SimpleLower((char)c);
                AddPreimage(set, lower);
                if (ExtraCases.TryGetValue(lower, out int[]? extra))
                {
                    foreach (int e in extra) AddPreimage(set, (char)e);
                }
            }
        }

        private static void AddPreimage(SortedSet<int> set, char lower)
        {
            set.Add(lower);
            if (LowercasePreimages.Value.TryGetValue(lower, out List<char>? upper)) foreach (char u in upper) set.Add(u);
        }

        /// <summary>A .NET set of the given code points, written as ranges of \uXXXX.</summary>
        private static string SetText(SortedSet<int> set, bool negate, string shorthands = "")
        {
            var text = new StringBuilder(negate ? "[^" : "[");
            int? start = null, previous = null;
            foreach (int c in set.Append(-2))
            {
                if (start is not null && c == previous + 1) { previous = c; continue; }
                if (start is not null) text.Append(previous == start ? Escape(start.Value) : $"{Escape(start.Value)}-{Escape(previous!.Value)}");
                start = previous = c;
            }
            return text.Append(shorthands).Append(']').ToString();
        }

        private void Quantifier(string quantifier, ref int lastAtom)
        {
            int at = _i;
            if (quantifier.Length == 1) _i++;
            if (lastAtom < 0) throw Error(_o.Length > 0 && "*+?}".Contains(_o[^1]) ? "multiple repeat" : "nothing to repeat", at);
            if (_i < p.Length && p[_i] == '?')
            {
                _i++;
                _o.Append(quantifier).Append('?');
            }
            else if (_i < p.Length && p[_i] == '+')
            {
                // Possessive (Python 3.11): the same as an atomic group around the quantified item.
                _i++;
                _o.Insert(lastAtom, "(?>").Append(quantifier).Append(')');
            }
            else
            {
                _o.Append(quantifier);
            }
            lastAtom = -1;
        }

        /// <summary>Python's brace quantifier: {m}, {m,}, {,n}, {m,n}, {,}; anything else is a literal brace.</summary>
        private bool TryBraceQuantifier(out string? quantifier)
        {
            quantifier = null;
            int j = _i + 1;
            int loStart = j;
            while (j < p.Length && char.IsAsciiDigit(p[j])) j++;
            string lo = p[loStart..j];
            string hi;
            bool comma = j < p.Length && p[j] == ',';
            if (comma)
            {
                j++;
                int hiStart = j;
                while (j < p.Length && char.IsAsciiDigit(p[j])) j++;
                hi = p[hiStart..j];
            }
            else
            {
                hi = lo;
            }
            if (j >= p.Length || p[j] != '}' || (!comma && lo.Length == 0)) return false;
            long min = lo.Length == 0 ? 0 : Bound(lo, _i);
            long? max = hi.Length == 0 ? null : Bound(hi, _i);
            if (max < min) throw Error("min repeat greater than max repeat", _i + 1);
            _i = j + 1;
            quantifier = !comma ? $"{{{min}}}" : max is null ? $"{{{min},}}" : $"{{{min},{max}}}";
            return true;
        }

        private long Bound(string digits, int at)
        {
            if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out long value) || value > int.MaxValue)
                throw Error($"the repeat count {digits} is larger than .NET's limit {int.MaxValue}", at);
            return value;
        }

        /// <summary>Parses an escape outside a class; true when the result can be quantified.</summary>
        private bool ParseEscape(int start)
        {
            int at = _i;
            if (_i + 1 >= p.Length) throw Error("bad escape (end of pattern)", at);
            char e = p[_i + 1];
            _i += 2;
            switch (e)
            {
                case 'A': _o.Append(@"\A"); return false;
                case 'Z': _o.Append(@"\z"); return false;   // Python's \Z is the end of the string only (.NET's \z)
                case 'b': _o.Append(WordBoundary(negate: false)); return false;
                case 'B': _o.Append(WordBoundary(negate: true)); return false;
                case 'd' or 'D' or 'w' or 'W' or 's' or 'S':
                    _o.Append('[').Append(char.IsUpper(e) ? "^" : "").Append(ShorthandBody(char.ToLowerInvariant(e))).Append(']');
                    return true;
                default:
                    if (char.IsAsciiDigit(e))
                    {
                        _i--;
                        return DigitEscape(at, start);
                    }
                    Literal(LiteralEscape(e, at, inClass: false));
                    return true;
            }
        }

        private string ShorthandBody(char lower) => lower switch
        {
            'd' => _ascii ? "0-9" : @"\d",
            'w' => _ascii ? AsciiWordClass : PyWordClass,
            _ => _ascii ? AsciiSpaceClass : PySpaceClass,
        };

        private string WordBoundary(bool negate)
        {
            string w = $"[{(_ascii ? AsciiWordClass : PyWordClass)}]";
            return negate
                ? $"(?:(?<={w})(?={w})|(?<!{w})(?!{w}))"
                : $"(?:(?<={w})(?!{w})|(?<!{w})(?={w}))";
        }

        /// <summary>\0, \0nn, \nnn (octal) or \n, \nn (group reference); _i is at the first digit.</summary>
        private bool DigitEscape(int at, int start)
        {
            int j = _i;
            if (p[j] == '0')
            {
                j++;
                int end = j;
                while (end < p.Length && end - j < 2 && p[end] is >= '0' and <= '7') end++;
                Literal(end == j ? 0 : Convert.ToInt32(p[j..end], 8));
                _i = end;
                return true;
            }
            if (j + 2 < p.Length && p[j] is >= '1' and <= '7' && p[j + 1] is >= '0' and <= '7' && p[j + 2] is >= '0' and <= '7')
            {
                int value = Convert.ToInt32(p.Substring(j, 3), 8);
                if (value > 0xFF) throw Error($@"octal escape value \{p.Substring(j, 3)} outside of range 0-0o377", at);
                Literal(value);
                _i = j + 3;
                return true;
            }
            int k = j + 1;
            if (k < p.Length && char.IsAsciiDigit(p[k])) k++;
            int group = int.Parse(p[j..k], CultureInfo.InvariantCulture);
            _i = k;
            _o.Append(BackReference(GroupReference(group, at)));
            return true;
        }

        // Python compares a back reference under IGNORECASE by lowercase; .NET's IgnoreCase is the closest it has.
        private string BackReference(string reference) => _ignoreCase ? $@"(?i:\k<{reference}>)" : $@"\k<{reference}>";

        private string GroupReference(int group, int at)
        {
            if (!_groupRef.TryGetValue(group, out string? reference)) throw Error($"invalid group reference {group}", at);
            if (_open.Contains(group)) throw Error("cannot refer to an open group", at);
            return reference;
        }

        /// <summary>The code point of a literal escape (\n, \x41, \u0041, \U0001F600, \. …), as Python's _escape.</summary>
        private int LiteralEscape(char e, int at, bool inClass)
        {
            switch (e)
            {
                case 'a': return 0x07;
                case 'f': return 0x0C;
                case 'n': return 0x0A;
                case 'r': return 0x0D;
                case 't': return 0x09;
                case 'v': return 0x0B;
                case 'b' when inClass: return 0x08;
                case 'x': return Hex(2, at);
                case 'u': return Hex(4, at);
                case 'U':
                    int cp = Hex(8, at);
                    if (cp > 0x10FFFF) throw Error($@"bad escape \U{cp:x8}", at);
                    return cp;
                case 'N':
                    throw Error(@"\N{…} (a character by its Unicode name) has no .NET equivalent; write the character or \uXXXX instead", at);
                default:
                    if (char.IsAsciiLetter(e) || char.IsAsciiDigit(e)) throw Error($@"bad escape \{e}", at);
                    if (char.IsHighSurrogate(e) && _i < p.Length && char.IsLowSurrogate(p[_i])) return char.ConvertToUtf32(e, p[_i++]);
                    return e;
            }
        }

        private int Hex(int digits, int at)
        {
            if (_i + digits > p.Length || p.AsSpan(_i, digits).ContainsAnyExcept("0123456789abcdefABCDEF"))
            {
                int end = _i;
                while (end < p.Length && end - _i < digits && char.IsAsciiHexDigit(p[end])) end++;
                throw Error($@"incomplete escape \{p[_i - 1]}{p[_i..end]}", at);
            }
            int value = int.Parse(p.AsSpan(_i, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            _i += digits;
            return value;
        }

        private void ParseClass()
        {
            int at = _i;
            _i++;
            bool negate = _i < p.Length && p[_i] == '^';
            if (negate) _i++;
            var set = new SortedSet<int>();
            var shorthands = new List<string>();
            var negatedShorthands = new List<string>();
            int first = _i;
            while (true)
            {
                if (_i >= p.Length) throw Error("unterminated character set", at);
                if (p[_i] == ']' && _i != first) { _i++; break; }
                int itemAt = _i;
                (int? lo, string? shorthand, bool negated) = ClassAtom(at);
                if (_i + 1 < p.Length && p[_i] == '-' && p[_i + 1] != ']')
                {
                    _i++;
                    (int? hi, string? shorthand2, _) = ClassAtom(at);
                    if (lo is null || hi is null || shorthand is not null || shorthand2 is not null)
                        throw Error($"bad character range {p[itemAt.._i]}", itemAt);
                    if (hi < lo) throw Error($"bad character range {p[itemAt.._i]}", itemAt);
                    if (hi > 0xFFFF) throw BeyondBmp(itemAt);
                    AddFolded(set, lo.Value, hi.Value);
                    continue;
                }
                if (shorthand is not null)
                {
                    if (negated) negatedShorthands.Add(p[itemAt.._i]);
                    shorthands.Add(shorthand);
                    continue;
                }
                int single = lo!.Value;   // not a shorthand, so a code point
                if (single > 0xFFFF) throw BeyondBmp(itemAt);
                AddFolded(set, single, single);
            }
            if (negatedShorthands.Count > 0)
            {
                if (set.Count + shorthands.Count > 1)
                {
                    throw Error($"the negated class escape {negatedShorthands[0]} inside a set with other items has no faithful .NET form " +
                        "(Python's and .NET's classes differ); write it as an alternation, e.g. (?:[…]|\\W)", at);
                }
                // A set holding only a negated escape: [\W] is \W, [^\W] is \w.
                _o.Append('[').Append(negate ? "" : "^").Append(shorthands[0]).Append(']');
                return;
            }
            _o.Append(SetText(set, negate, string.Concat(shorthands)));
        }

        private PythonRegexException BeyondBmp(int at) =>
            Error("a character beyond U+FFFF inside [...] cannot be translated: Python matches code points, .NET UTF-16 code units", at);

        /// <summary>One set member: a code point, or a class escape's .NET body (negated ones flagged).</summary>
        private (int? CodePoint, string? Shorthand, bool Negated) ClassAtom(int setAt)
        {
            if (_i >= p.Length) throw Error("unterminated character set", setAt);
            if (p[_i] != '\\') return (ReadCodePoint(), null, false);
            int at = _i;
            if (_i + 1 >= p.Length) throw Error("unterminated character set", setAt);
            char e = p[_i + 1];
            _i += 2;
            switch (e)
            {
                case 'd' or 'w' or 's':
                    return (null, ShorthandBody(e), false);
                case 'D' when !_ascii:
                    return (null, @"\D", false);   // identical in both: not a Unicode decimal digit
                case 'D' or 'W' or 'S':
                    return (null, ShorthandBody(char.ToLowerInvariant(e)), true);
                default:
                    if (e is >= '0' and <= '7')
                    {
                        int end = _i;
                        while (end < p.Length && end - _i < 2 && p[end] is >= '0' and <= '7') end++;
                        int value = Convert.ToInt32(p[(_i - 1)..end], 8);
                        if (value > 0xFF) throw Error($@"octal escape value \{p[(_i - 1)..end]} outside of range 0-0o377", at);
                        _i = end;
                        return (value, null, false);
                    }
                    return (LiteralEscape(e, at, inClass: true), null, false);
            }
        }

        /// <summary>Parses a group; true when it can be quantified (not a comment or a global flag group).</summary>
        private bool ParseGroup(int depth, int start)
        {
            int at = _i;
            _i++;
            if (_i < p.Length && p[_i] == '?')
            {
                _i++;
                if (_i >= p.Length) throw Error("unexpected end of pattern", at);
                char k = p[_i];
                switch (k)
                {
                    case ':': _i++; _o.Append("(?:"); return Body(depth, at, 0, null);
                    case '=' or '!': _i++; _o.Append("(?").Append(k); return Body(depth, at, 0, null);
                    case '>': _i++; _o.Append("(?>"); return Body(depth, at, 0, null);
                    case '<' when _i + 1 < p.Length && p[_i + 1] is '=' or '!':
                        _o.Append("(?<").Append(p[_i + 1]);
                        _i += 2;
                        return Body(depth, at, 0, null);
                    case '#':
                        int close = p.IndexOf(')', _i);
                        if (close < 0) throw Error("missing ), unterminated comment", at);
                        _i = close + 1;
                        return false;
                    case 'P':
                        return NamedGroupOrReference(depth, at);
                    case '(':
                        return Conditional(depth, at);
                    default:
                        if ("aiLmsux-".Contains(k)) return Flags(depth, at);
                        throw Error($"unknown extension ?{k}", at);
                }
            }
            int number = ++_groups;
            _groupRef[number] = number.ToString(CultureInfo.InvariantCulture);
            _open.Add(number);
            _o.Append("(?<").Append(number).Append('>');
            return Body(depth, at, number, null);
        }

        /// <summary>The group's contents and its ')'; restores flags a scoped-flag group changed.</summary>
        private bool Body(int depth, int at, int number, (bool Verbose, bool Ascii, bool IgnoreCase)? restore)
        {
            ParseSequence(depth + 1, out int alternatives);
            if (_i >= p.Length) throw Error("missing ), unterminated subpattern", at);
            _i++;
            _o.Append(')');
            if (number > 0) _open.Remove(number);
            if (restore is { } r) (_verbose, _ascii, _ignoreCase) = r;
            _lastAlternatives = alternatives;
            return true;
        }

        private int _lastAlternatives;

        private bool NamedGroupOrReference(int depth, int at)
        {
            _i++;
            if (_i < p.Length && p[_i] == '<')
            {
                string name = GroupName('>', at);
                if (_names.ContainsKey(name)) throw Error($"redefinition of group name '{name}'", at);
                int number = ++_groups;
                _names[name] = number;
                _groupRef[number] = name;
                _open.Add(number);
                _o.Append("(?<").Append(name).Append('>');
                return Body(depth, at, number, null);
            }
            if (_i < p.Length && p[_i] == '=')
            {
                string name = GroupName(')', at);
                if (!_names.TryGetValue(name, out int number)) throw Error($"unknown group name '{name}'", at);
                _o.Append(BackReference(GroupReference(number, at)));
                return true;
            }
            throw Error("unknown extension ?P" + (_i < p.Length ? p[_i].ToString() : ""), at);
        }

        /// <summary>Reads a group name after the current character up to <paramref name="end"/>; Python identifiers .NET can also name.</summary>
        private string GroupName(char end, int at)
        {
            int close = p.IndexOf(end, _i + 1);
            if (close < 0) throw Error("missing " + end + ", unterminated name", at);
            string name = p[(_i + 1)..close];
            _i = close + 1;
            if (name.Length == 0) throw Error("missing group name", at);
            if (!IsIdentifier(name)) throw Error($"bad character in group name '{name}'", at);
            // .NET group names are word characters; a Python identifier outside that set cannot be carried over.
            if (!name.All(ch => char.IsLetterOrDigit(ch) || ch == '_'))
                throw Error($"the group name '{name}' is a Python identifier but not a valid .NET group name", at);
            return name;
        }

        private static bool IsIdentifier(string name) =>
            (char.IsLetter(name[0]) || name[0] == '_') && name.All(ch => char.IsLetterOrDigit(ch) || ch == '_'
                || CharUnicodeInfo.GetUnicodeCategory(ch) is UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.ConnectorPunctuation);

        private bool Conditional(int depth, int at)
        {
            int close = p.IndexOf(')', _i + 1);
            if (close < 0) throw Error("missing ), unterminated name", at);
            string id = p[(_i + 1)..close];
            _i = close + 1;
            string reference;
            if (id.Length > 0 && id.All(char.IsAsciiDigit))
            {
                if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out int number) || number == 0)
                    throw Error("bad group number", at);
                if (!_groupRef.TryGetValue(number, out reference!)) throw Error($"invalid group reference {number}", at);
            }
            else
            {
                if (id.Length == 0 || !IsIdentifier(id)) throw Error($"bad character in group name '{id}'", at);
                if (!_names.TryGetValue(id, out int number)) throw Error($"unknown group name '{id}'", at);
                reference = _groupRef[number];
            }
            _o.Append("(?(").Append(reference).Append(')');
            Body(depth, at, 0, null);
            if (_lastAlternatives > 1) throw Error("conditional backref with more than two branches", at);
            return true;
        }

        private bool Flags(int depth, int at)
        {
            string on = "", off = "";
            while (_i < p.Length && "aiLmsux".Contains(p[_i])) on += p[_i++];
            if (_i < p.Length && p[_i] == '-')
            {
                _i++;
                while (_i < p.Length && "aiLmsux".Contains(p[_i])) off += p[_i++];
                if (off.Length == 0) throw Error("missing flag", at);
            }
            if (_i >= p.Length) throw Error("missing -, : or )", at);
            if (on.Contains('L') || off.Contains('L')) throw Error("bad inline flags: cannot use 'L' flag with a str pattern", at);
            if (off.Contains('a') || off.Contains('u')) throw Error("bad inline flags: cannot turn off flags 'a', 'u' and 'L'", at);
            if (on.Contains('a') && on.Contains('u')) throw Error("bad inline flags: flags 'a', 'u' and 'L' are incompatible", at);
            if (on.Intersect(off).Any()) throw Error("bad inline flags: flag turned on and off", at);

            if (p[_i] == ')')
            {
                _i++;
                if (off.Length > 0) throw Error("missing :", at);
                // Python 3.11: global flags only at the start of the expression.
                if (depth > 0 || _seenItem) throw Error("global flags not at the start of the expression", at);
                if (on.Contains('x')) _verbose = true;
                if (on.Contains('a')) _ascii = true;
                if (on.Contains('i')) _ignoreCase = true;   // folded by the translator, not by .NET (AddFolded)
                if (on.Contains('m')) GlobalOptions |= RegexOptions.Multiline;
                if (on.Contains('s')) GlobalOptions |= RegexOptions.Singleline;
                return false;
            }
            if (p[_i] != ':') throw Error("missing -, : or )", at);
            _i++;
            var restore = (_verbose, _ascii, _ignoreCase);
            if (on.Contains('x')) _verbose = true;
            if (off.Contains('x')) _verbose = false;
            if (on.Contains('a')) _ascii = true;
            if (on.Contains('i')) _ignoreCase = true;
            if (off.Contains('i')) _ignoreCase = false;
            // m and s scope the same way in .NET; i, x, a and u are applied here.
            string netOn = new(on.Where(f => f is 'm' or 's').ToArray());
            string netOff = new(off.Where(f => f is 'm' or 's').ToArray());
            _o.Append("(?").Append(netOn).Append(netOff.Length > 0 ? "-" + netOff : "").Append(':');
            return Body(depth, at, 0, restore);
        }
    }
}

/// <summary>A Python regular expression that is invalid, or has no faithful .NET translation; the message says which construct and where.</summary>
internal sealed class PythonRegexException(string message, Exception? inner = null) : ArgumentException(message, inner);
