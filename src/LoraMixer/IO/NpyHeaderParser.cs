using System.Globalization;
using LoraMixer.Errors;

namespace LoraMixer.IO;

/// <summary>
/// Parses the Python dict literal of a <c>.npy</c> header: string keys, and values that are strings,
/// booleans or tuples of integers. Just enough of Python's syntax for what NumPy writes, strictly
/// checked because the header is untrusted.
/// </summary>
internal sealed class NpyHeaderParser
{
    private readonly string _text;
    private readonly Func<string, ModelFormatException> _fail;
    private int _position;

    private NpyHeaderParser(string text, Func<string, ModelFormatException> fail)
    {
        _text = text;
        _fail = fail;
    }

    /// <summary>
    /// The entries of the dict in <paramref name="header"/>: <see cref="string"/>, <see cref="bool"/> or
    /// <c>long[]</c> values; <paramref name="fail"/> builds the exception for a problem.
    /// </summary>
    public static Dictionary<string, object> Parse(string header, Func<string, ModelFormatException> fail)
    {
        var parser = new NpyHeaderParser(header, fail);
        var result = parser.ParseDict();
        parser.SkipSpace();
        if (parser._position != header.Length)
            throw fail("its header has text after the dictionary");
        return result;
    }

    private Dictionary<string, object> ParseDict()
    {
        SkipSpace();
        Expect('{');
        var result = new Dictionary<string, object>(StringComparer.Ordinal);
        while (true)
        {
            SkipSpace();
            if (TryTake('}')) return result;
            string key = ParseString();
            SkipSpace();
            Expect(':');
            SkipSpace();
            object value = ParseValue();
            if (!result.TryAdd(key, value))
                throw _fail($"its header lists key '{SafeTensorsHeader.Printable(key)}' twice");
            SkipSpace();
            if (TryTake('}')) return result;
            Expect(',');
        }
    }

    private object ParseValue()
    {
        char c = Peek();
        if (c is '\'' or '"') return ParseString();
        if (c == '(') return ParseTuple();
        if (TryWord("True")) return true;
        if (TryWord("False")) return false;
        throw _fail($"its header has an unexpected value at offset {_position}");
    }

    private long[] ParseTuple()
    {
        Expect('(');
        var items = new List<long>();
        bool trailingComma = false;
        while (true)
        {
            SkipSpace();
            if (TryTake(')')) break;
            items.Add(ParseInteger());
            trailingComma = false;
            SkipSpace();
            if (TryTake(')')) break;
            Expect(',');
            trailingComma = true;
        }
        // Python needs the trailing comma for a one-element tuple; "(5)" is just the integer 5.
        if (items.Count == 1 && !trailingComma)
            throw _fail("its header has '(n)' where a tuple '(n,)' is needed");
        if (items.Count > SafeTensorsHeader.MaxRank)
            throw _fail($"its shape has {items.Count} dimensions; at most {SafeTensorsHeader.MaxRank} are supported");
        return items.ToArray();
    }

    private long ParseInteger()
    {
        int start = _position;
        while (_position < _text.Length && char.IsAsciiDigit(_text[_position])) _position++;
        if (_position == start || _position - start > 18)
            throw _fail($"its shape has a missing or too large integer at offset {start}");
        long value = long.Parse(_text.AsSpan(start, _position - start), NumberStyles.None, CultureInfo.InvariantCulture);
        // Python 2 wrote longs with an L suffix; old files still carry it.
        TryTake('L');
        return value;
    }

    private string ParseString()
    {
        char quote = Peek();
        if (quote is not ('\'' or '"'))
            throw _fail($"its header has no quoted string at offset {_position}");
        _position++;
        int start = _position;
        // NumPy's keys and dtype strings never contain quotes or escapes, so none are interpreted.
        while (_position < _text.Length && _text[_position] != quote)
        {
            if (_text[_position] == '\\') throw _fail("its header has an escaped string, which NumPy never writes");
            _position++;
        }
        if (_position >= _text.Length) throw _fail("its header has an unterminated string");
        string value = _text[start.._position];
        _position++;
        return value;
    }

    private bool TryWord(string word)
    {
        if (string.CompareOrdinal(_text, _position, word, 0, word.Length) != 0) return false;
        _position += word.Length;
        return true;
    }

    private char Peek() => _position < _text.Length ? _text[_position] : '\0';

    private bool TryTake(char c)
    {
        if (Peek() != c) return false;
        _position++;
        return true;
    }

    private void Expect(char c)
    {
        if (!TryTake(c))
            throw _fail($"its header has no '{c}' at offset {_position}");
    }

    private void SkipSpace()
    {
        while (_position < _text.Length && _text[_position] is ' ' or '\t' or '\n' or '\r') _position++;
    }
}
