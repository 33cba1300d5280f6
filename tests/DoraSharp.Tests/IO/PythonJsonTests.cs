using DoraSharp.IO;
using Xunit;

namespace DoraSharp.Tests.IO;

/// <summary>
/// The config writer's JSON equals CPython's. Every expected string here was printed by CPython 3.11's
/// <c>repr(float)</c> and <c>json.dumps(..., indent=2, sort_keys=True)</c>.
/// </summary>
public sealed class PythonJsonTests
{
    [Theory]
    [InlineData(0.0, "0.0")]
    [InlineData(-0.0, "-0.0")]
    [InlineData(0.1, "0.1")]
    [InlineData(1.0 / 3, "0.3333333333333333")]
    [InlineData(2.5e-05, "2.5e-05")]
    [InlineData(1e-4, "0.0001")]
    [InlineData(1e-5, "1e-05")]
    [InlineData(1e-7, "1e-07")]
    [InlineData(123456789.123, "123456789.123")]
    [InlineData(1e15, "1000000000000000.0")]
    [InlineData(1e16, "1e+16")]
    [InlineData(1e22, "1e+22")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(1.5e-323, "1.5e-323")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(0.05, "0.05")]
    [InlineData(16.5, "16.5")]
    [InlineData(-2.75, "-2.75")]
    [InlineData(100.0, "100.0")]
    [InlineData(1234567890123456.7, "1234567890123456.8")]
    [InlineData(12345678901234567.0, "1.2345678901234568e+16")]
    [InlineData(0.30000000000000004, "0.30000000000000004")]
    [InlineData(9007199254740993.0, "9007199254740992.0")]
    public void FloatRepr_is_Pythons_repr(double value, string python) =>
        Assert.Equal(python, PythonJson.FloatRepr(value));

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void FloatRepr_refuses_values_JSON_cannot_hold(double value) =>
        Assert.Throws<ArgumentException>(() => PythonJson.FloatRepr(value));

    [Fact]
    public void Dumps_matches_json_dumps_indent_2_sort_keys()
    {
        // CPython: json.dumps({"b":[1,{"z":None,"a":[]}],"a":{},"é":"x\u00e9\u2028\U0001F600\"\\\n\t\x01\x7f~",
        //                      "\U0001F600":1,"\uffff":2,"c":True,"d":0.5}, indent=2, sort_keys=True)
        var value = new Dictionary<string, object?>
        {
            ["b"] = new List<object?> { 1, new Dictionary<string, object?> { ["z"] = null, ["a"] = new List<object?>() } },
            ["a"] = new Dictionary<string, object?>(),
            ["é"] = "x\u00e9\u2028\U0001F600\"\\\n\t\u0001\u007f~",
            ["\U0001F600"] = 1,
            ["\uffff"] = 2,
            ["c"] = true,
            ["d"] = 0.5,
        };
        const string Python = "{\n  \"a\": {},\n  \"b\": [\n    1,\n    {\n      \"a\": [],\n      \"z\": null\n    }\n  ],\n  \"c\": true,\n  \"d\": 0.5,\n" +
            "  \"\\u00e9\": \"x\\u00e9\\u2028\\ud83d\\ude00\\\"\\\\\\n\\t\\u0001\\u007f~\",\n  \"\\uffff\": 2,\n  \"\\ud83d\\ude00\": 1\n}";
        Assert.Equal(Python, PythonJson.Dumps(value));
    }
}
