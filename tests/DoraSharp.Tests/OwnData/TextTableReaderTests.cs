using System.Text;
using DoraSharp.MiniLM.OwnData;
using Xunit;

namespace DoraSharp.Tests.OwnData;

/// <summary>The user's data files: RFC 4180 CSV, TSV, JSON Lines, strict UTF-8; every error names file, line, column.</summary>
public sealed class TextTableReaderTests
{
    private static TextTable Csv(string content) => TextTableReader.Parse(Encoding.UTF8.GetBytes(content), TextTableFormat.Csv, "data.csv");

    private static DataFileException Fails(string content, TextTableFormat format = TextTableFormat.Csv) =>
        Assert.Throws<DataFileException>(() => TextTableReader.Parse(Encoding.UTF8.GetBytes(content), format, "data.csv"));

    [Fact]
    public void Quoted_fields_keep_commas_doubled_quotes_and_line_breaks_and_later_rows_keep_their_line_numbers()
    {
        var table = Csv("text,label\r\n\"a, b\",x\r\n\"she said \"\"hi\"\"\",y\n\"two\nlines\",z\nlast,w\n");
        Assert.Equal(["text", "label"], table.Columns);
        Assert.Equal(["a, b", "she said \"hi\"", "two\nlines", "last"], table.Rows.Select(r => r["text"]));
        Assert.Equal(["x", "y", "z", "w"], table.Rows.Select(r => r["label"]));
        // The quoted line break spans lines 4-5, so the next record starts on line 6.
        Assert.Equal([2, 3, 4, 6], table.Lines);
    }

    [Fact]
    public void A_byte_order_mark_is_not_part_of_the_first_column_name()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF }.Concat(Encoding.UTF8.GetBytes("text,label\nhello,a\n")).ToArray();
        var table = TextTableReader.Parse(bytes, TextTableFormat.Csv, "bom.csv");
        Assert.Equal("text", table.Columns[0]);
        Assert.Equal("hello", table.Texts("text", "--text-column")[0]);
    }

    [Fact]
    public void A_row_with_too_many_fields_is_reported_with_its_line_counting_quoted_line_breaks()
    {
        var e = Fails("text,label\n\"multi\nline\",a\nok,b\nbad,row,here\n");
        Assert.Contains("data.csv, line 5:", e.Message);
        Assert.Contains("3 field(s) but the header has 2", e.Message);
    }

    [Theory]
    [InlineData("text,label\nsay \"hi\",a\n", "line 2, column 1: a quote inside an unquoted field")]
    [InlineData("text,label\n\"closed\"x,a\n", "line 2, column 1: text after the closing quote")]
    [InlineData("text,label\nok,a\n\"never closed,b\n", "line 3, column 1: the quoted field opened here is never closed")]
    [InlineData("text,text\nok,a\n", "column name 'text' appears twice")]
    [InlineData("text,label\n", "has a header (text, label) but no rows")]
    [InlineData("", "the file is empty")]
    [InlineData("\n\r\n", "the file is empty")]
    public void Malformed_csv_is_an_error_naming_the_place(string content, string expected) =>
        Assert.Contains(expected, Fails(content).Message);

    [Fact]
    public void Invalid_utf8_is_reported_with_its_byte_offset_and_line()
    {
        var head = Encoding.UTF8.GetBytes("text,label\ncaf\u00e9,a\nbad ");   // é is two bytes
        var bytes = head.Concat(new byte[] { 0xFF }).Concat(Encoding.UTF8.GetBytes(",b\n")).ToArray();
        var e = Assert.Throws<DataFileException>(() => TextTableReader.Parse(bytes, TextTableFormat.Csv, "data.csv"));
        Assert.Contains($"byte offset {head.Length}", e.Message);
        Assert.Contains("line 3", e.Message);
        Assert.Contains("0xFF", e.Message);
    }

    [Fact]
    public void The_byte_offset_of_invalid_utf8_counts_the_byte_order_mark()
    {
        var bytes = new byte[] { 0xEF, 0xBB, 0xBF, (byte)'a', 0xC3 };   // a truncated two-byte sequence at offset 4
        var e = Assert.Throws<DataFileException>(() => TextTableReader.Decode(bytes, "f"));
        Assert.Contains("byte offset 4", e.Message);
    }

    [Fact]
    public void A_missing_column_lists_the_columns_found()
    {
        var table = Csv("sentence,category\nhi,a\n");
        var e = Assert.Throws<DataFileException>(() => table.Texts("text", "--text-column"));
        Assert.Contains("no column 'text' (--text-column)", e.Message);
        Assert.Contains("'sentence', 'category'", e.Message);
    }

    [Fact]
    public void An_empty_text_is_an_error_naming_its_line()
    {
        var table = Csv("text,label\nfine,a\n  ,b\n");
        var e = Assert.Throws<DataFileException>(() => table.Texts("text", "--text-column"));
        Assert.Contains("line 3", e.Message);
        Assert.Contains("'text' is empty", e.Message);
    }

    [Fact]
    public void Tsv_uses_tabs_and_keeps_commas()
    {
        var table = TextTableReader.Parse(Encoding.UTF8.GetBytes("text\tlabel\na, b\tx\n"), TextTableFormat.Tsv, "d.tsv");
        Assert.Equal("a, b", table.Rows[0]["text"]);
        Assert.Equal("x", table.Rows[0]["label"]);
    }

    [Fact]
    public void Json_lines_read_strings_numbers_and_booleans_and_report_bad_lines()
    {
        var table = TextTableReader.Parse(Encoding.UTF8.GetBytes("{\"text\":\"a\",\"label\":3}\n\n{\"text\":\"b\",\"label\":true}\n"), TextTableFormat.JsonLines, "d.jsonl");
        Assert.Equal(["3", "true"], table.Rows.Select(r => r["label"]));
        Assert.Equal([1, 3], table.Lines);
        var e = Fails("{\"text\":\"a\"}\n{\"text\": oops}\n", TextTableFormat.JsonLines);
        Assert.Contains("line 2, column", e.Message);
        Assert.Contains("line 1: a JSON array", Fails("[1]\n", TextTableFormat.JsonLines).Message);
    }

    [Fact]
    public void The_format_comes_from_the_extension_and_an_unknown_one_names_format()
    {
        Assert.Equal(TextTableFormat.Csv, TextTableFormats.FromExtension("x/a.CSV"));
        Assert.Equal(TextTableFormat.JsonLines, TextTableFormats.FromExtension("a.jsonl"));
        var e = Assert.Throws<DataFileException>(() => TextTableReader.Read("data.txt"));
        Assert.Contains("--format", e.Message);
    }
}
