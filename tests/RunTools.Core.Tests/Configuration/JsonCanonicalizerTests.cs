using System;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using RunTools.Core.Configuration;
using Xunit;

namespace RunTools.Core.Tests.Configuration;

public sealed class JsonCanonicalizerTests
{
    // RFC 8785 test vectors, copied from github.com/cyberphone/json-canonicalization
    // testdata/input/*.json and testdata/output/*.json (non-ASCII output written as \u escapes).
    [Theory]
    [InlineData(
        "arrays",
        "[\n  56,\n  {\n    \"d\": true,\n    \"10\": null,\n    \"1\": [ ]\n  }\n]\n",
        "[56,{\"1\":[],\"10\":null,\"d\":true}]")]
    [InlineData(
        "french",
        "{\n  \"peach\": \"This sorting order\",\n  \"p\u00e9ch\u00e9\": \"is wrong according to French\",\n  \"p\u00eache\": \"but canonicalization MUST\",\n  \"sin\":   \"ignore locale\"\n}\n",
        "{\"peach\":\"This sorting order\",\"p\u00e9ch\u00e9\":\"is wrong according to French\",\"p\u00eache\":\"but canonicalization MUST\",\"sin\":\"ignore locale\"}")]
    [InlineData(
        "structures",
        "{\n  \"1\": {\"f\": {\"f\": \"hi\",\"F\": 5} ,\"\\n\": 56.0},\n  \"10\": { },\n  \"\": \"empty\",\n  \"a\": { },\n  \"111\": [ {\"e\": \"yes\",\"E\": \"no\" } ],\n  \"A\": { }\n}",
        "{\"\":\"empty\",\"1\":{\"\\n\":56,\"f\":{\"F\":5,\"f\":\"hi\"}},\"10\":{},\"111\":[{\"E\":\"no\",\"e\":\"yes\"}],\"A\":{},\"a\":{}}")]
    [InlineData(
        "unicode",
        "{\n  \"Unnormalized Unicode\":\"A\\u030a\"\n}\n",
        "{\"Unnormalized Unicode\":\"A\u030a\"}")]
    [InlineData(
        "values",
        "{\n  \"numbers\": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],\n  \"string\": \"\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\\"\\/\",\n  \"literals\": [null, true, false]\n}",
        "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\"string\":\"\u20ac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}")]
    [InlineData(
        "weird",
        "{\n  \"\\u20ac\": \"Euro Sign\",\n  \"\\r\": \"Carriage Return\",\n  \"\\u000a\": \"Newline\",\n  \"1\": \"One\",\n  \"\\u0080\": \"Control\\u007f\",\n  \"\\ud83d\\ude02\": \"Smiley\",\n  \"\\u00f6\": \"Latin Small Letter O With Diaeresis\",\n  \"\\ufb33\": \"Hebrew Letter Dalet With Dagesh\",\n  \"</script>\": \"Browser Challenge\"\n}\n",
        "{\"\\n\":\"Newline\",\"\\r\":\"Carriage Return\",\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u0080\":\"Control\u007f\",\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\",\"\ud83d\ude02\":\"Smiley\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}")]
    public void Rfc8785TestVectors(string name, string input, string expected)
    {
        Assert.Equal(expected, JsonCanonicalizer.Canonicalize(JsonNode.Parse(input)));
        if (name != "arrays")
        {
            // The same vectors through the strict config reader.
            Assert.Equal(expected, EffectiveConfig.FromText(input, ConfigFormat.Json).CanonicalJson);
        }
    }

    [Fact]
    public void OutputBytesOfWeirdVectorMatchOutHex()
    {
        // testdata/outhex/weird.txt, first members: {"\n":"Newline","\r":"Carriage Return","1":"One",...
        string canonical = JsonCanonicalizer.Canonicalize(JsonNode.Parse("{\"\\u0080\":\"Control\\u007f\",\"\\ud83d\\ude02\":\"Smiley\"}"));
        Assert.Equal("7b 22 c2 80 22 3a 22 43 6f 6e 74 72 6f 6c 7f 22 2c 22 f0 9f 98 82 22 3a 22 53 6d 69 6c 65 79 22 7d", Hex(Encoding.UTF8.GetBytes(canonical)));
    }

    [Fact]
    public void SortsMembersByUtf16CodeUnits()
    {
        // RFC 8785 section 3.2.3 sorting example.
        var obj = new JsonObject();
        foreach (string key in new[] { "\u20ac", "\r", "\ufb33", "1", "\ud83d\ude00", "\u0080", "\u00f6" })
        {
            obj[key] = key.Length;
        }

        string expected = "{\"\\r\":1,\"1\":1,\"\u0080\":1,\"\u00f6\":1,\"\u20ac\":1,\"\ud83d\ude00\":2,\"\ufb33\":1}";
        Assert.Equal(expected, JsonCanonicalizer.Canonicalize(obj));
    }

    [Theory]
    [InlineData(1e21, "1e+21")]
    [InlineData(1e-7, "1e-7")]
    [InlineData(0.000001, "0.000001")]
    [InlineData(123456789012345680000.0, "123456789012345680000")]
    [InlineData(5e-324, "5e-324")]
    [InlineData(-5e-324, "-5e-324")]
    [InlineData(1.7976931348623157e308, "1.7976931348623157e+308")]
    [InlineData(-1.7976931348623157e308, "-1.7976931348623157e+308")]
    [InlineData(-0.0, "0")]
    [InlineData(333333333.33333329, "333333333.3333333")]
    [InlineData(9007199254740992.0, "9007199254740992")]
    [InlineData(-9007199254740992.0, "-9007199254740992")]
    [InlineData(1e20, "100000000000000000000")]
    [InlineData(1e23, "1e+23")]
    [InlineData(1.5, "1.5")]
    [InlineData(-1.5e-10, "-1.5e-10")]
    [InlineData(0.1, "0.1")]
    [InlineData(4.35, "4.35")]
    [InlineData(1e30, "1e+30")]
    [InlineData(1e-27, "1e-27")]
    [InlineData(123.456, "123.456")]
    [InlineData(1e15, "1000000000000000")]
    [InlineData(1.25e-6, "0.00000125")]
    public void FormatsNumbersLikeEcmaScript(double value, string expected)
    {
        Assert.Equal(expected, JsonCanonicalizer.Canonicalize(JsonValue.Create(value)));
    }

    [Fact]
    public void SumOfTenthsKeepsSeventeenDigits()
    {
        Assert.Equal("0.30000000000000004", JsonCanonicalizer.Canonicalize(JsonValue.Create(0.1 + 0.2)));
    }

    // Sample lines from the RFC 8785 / cyberphone testdata README ("hex-ieee,expected").
    [Theory]
    [InlineData(0x4340000000000001UL, "9007199254740994")]
    [InlineData(0x4340000000000002UL, "9007199254740996")]
    [InlineData(0x444b1ae4d6e2ef50UL, "1e+21")]
    [InlineData(0x3eb0c6f7a0b5ed8dUL, "0.000001")]
    [InlineData(0x3eb0c6f7a0b5ed8cUL, "9.999999999999997e-7")]
    [InlineData(0x8000000000000000UL, "0")]
    [InlineData(0x0UL, "0")]
    [InlineData(0x44b52d02c7e14af5UL, "9.999999999999997e+22")]
    [InlineData(0x44b52d02c7e14af6UL, "1e+23")]
    [InlineData(0x44b52d02c7e14af7UL, "1.0000000000000001e+23")]
    [InlineData(0x444b1ae4d6e2ef4eUL, "999999999999999700000")]
    [InlineData(0x444b1ae4d6e2ef4fUL, "999999999999999900000")]
    [InlineData(0x4430000000000000UL, "295147905179352830000")]
    [InlineData(0x41b3de4355555553UL, "333333333.3333332")]
    [InlineData(0x41b3de4355555554UL, "333333333.33333325")]
    [InlineData(0x41b3de4355555555UL, "333333333.3333333")]
    [InlineData(0x41b3de4355555556UL, "333333333.3333334")]
    [InlineData(0x41b3de4355555557UL, "333333333.33333343")]
    [InlineData(0xbecbf647612f3696UL, "-0.0000033333333333333333")]
    [InlineData(0x43143ff3c1cb0959UL, "1424953923781206.2")]
    public void FormatsIeeeBitPatterns(ulong bits, string expected)
    {
        double value = BitConverter.Int64BitsToDouble(unchecked((long)bits));
        Assert.Equal(expected, JsonCanonicalizer.Canonicalize(JsonValue.Create(value)));
    }

    /// <summary>
    /// Regenerates the first 100,000 lines of es6testfile100m.txt exactly as testdata/numgen.go does
    /// and checks the SHA-256 recorded in the cyberphone testdata README.
    /// </summary>
    [Theory]
    [InlineData(1000, 37967L, "be18b62b6f69cdab33a7e0dae0d9cfa869fda80ddc712221570f9f40a5878687")]
    [InlineData(100000, 4031728L, "22776e6d4b49fa294a0d0f349268e5c28808fe7e0cb2bcbe28f63894e494d4c7")]
    public void MatchesEs6NumberTestFileHash(int lines, long size, string expectedHash)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        long total = 0;
        var generator = new NumGen();
        for (int i = 0; i < lines; i++)
        {
            double f = generator.Next();
            string line = BitConverter.DoubleToInt64Bits(f).ToString("x", CultureInfo.InvariantCulture) + ","
                + JsonCanonicalizer.Canonicalize(JsonValue.Create(f)) + "\n";
            byte[] bytes = Encoding.ASCII.GetBytes(line);
            total += bytes.Length;
            sha.AppendData(bytes);
        }

        Assert.Equal(size, total);
        Assert.Equal(expectedHash, Hex(sha.GetHashAndReset()).Replace(" ", string.Empty, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("\u0001", "\"\\u0001\"")]
    [InlineData("\u001f", "\"\\u001f\"")]
    [InlineData("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"")]
    [InlineData("\"\\", "\"\\\"\\\\\"")]
    [InlineData("/<>&'", "\"/<>&'\"")]
    [InlineData("\u007f\u2028\u2029\u00e9", "\"\u007f\u2028\u2029\u00e9\"")]
    public void EscapesStringsMinimally(string value, string expected)
    {
        Assert.Equal(expected, JsonCanonicalizer.Canonicalize(JsonValue.Create(value)));
    }

    [Theory]
    [InlineData(new[] { 0xD800 })]
    [InlineData(new[] { 0x61, 0xDC00, 0x62 })]
    [InlineData(new[] { 0xDE00, 0xD83D })]
    [InlineData(new[] { 0xD83D, 0xD83D, 0xDE00 })]
    public void RejectsLoneSurrogates(int[] codeUnits)
    {
        // Built from code units: xunit would mangle lone surrogates in string test data.
        var chars = new char[codeUnits.Length];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)codeUnits[i];
        }

        var obj = new JsonObject { ["k"] = new string(chars) };
        var ex = Assert.Throws<InvalidConfigException>(() => JsonCanonicalizer.Canonicalize(obj));
        Assert.Contains("'k'", ex.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidConfigException>(() => JsonCanonicalizer.Canonicalize(new JsonObject { [new string(chars)] = 1 }));
    }

    [Theory]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    [InlineData(double.NegativeInfinity)]
    public void RejectsNonFiniteNumbers(double value)
    {
        Assert.Throws<InvalidConfigException>(() => JsonCanonicalizer.Canonicalize(new JsonArray(JsonValue.Create(value))));
    }

    [Fact]
    public void ReadsNumbersOfAnyClrType()
    {
        var array = new JsonArray(
            JsonValue.Create(5),
            JsonValue.Create(5L),
            JsonValue.Create(5.5m),
            JsonValue.Create(1.1f),
            JsonValue.Create((byte)7),
            JsonValue.Create(9007199254740993L),
            JsonNode.Parse("1E2"));
        Assert.Equal("[5,5,5.5,1.1,7,9007199254740992,100]", JsonCanonicalizer.Canonicalize(array));
    }

    [Fact]
    public void WritesNullAndLiterals()
    {
        Assert.Equal("null", JsonCanonicalizer.Canonicalize(null));
        Assert.Equal("[null,true,false,\"x\"]", JsonCanonicalizer.Canonicalize(new JsonArray(null, true, false, "x")));
        Assert.Equal("{\"a\":[],\"b\":{}}", JsonCanonicalizer.Canonicalize(JsonNode.Parse(" { \"b\" : { } , \"a\" : [ ] } ")));
    }

    private static string Hex(byte[] bytes)
    {
        var sb = new StringBuilder();
        foreach (byte b in bytes)
        {
            if (sb.Length > 0)
            {
                sb.Append(' ');
            }

            sb.Append(b.ToString("x2", CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }

    /// <summary>Port of the generator in cyberphone/json-canonicalization testdata/numgen.go.</summary>
    private sealed class NumGen
    {
        private static readonly ulong[] _static =
        [
        0x0000000000000000UL, 0x8000000000000000UL, 0x0000000000000001UL, 0x8000000000000001UL,
        0xc46696695dbd1cc3UL, 0xc43211ede4974a35UL, 0xc3fce97ca0f21056UL, 0xc3c7213080c1a6acUL,
        0xc39280f39a348556UL, 0xc35d9b1f5d20d557UL, 0xc327af4c4a80aaacUL, 0xc2f2f2a36ecd5556UL,
        0xc2be51057e155558UL, 0xc28840d131aaaaacUL, 0xc253670dc1555557UL, 0xc21f0b4935555557UL,
        0xc1e8d5d42aaaaaacUL, 0xc1b3de4355555556UL, 0xc17fca0555555556UL, 0xc1496e6aaaaaaaabUL,
        0xc114585555555555UL, 0xc0e046aaaaaaaaabUL, 0xc0aa0aaaaaaaaaaaUL, 0xc074d55555555555UL,
        0xc040aaaaaaaaaaabUL, 0xc00aaaaaaaaaaaabUL, 0xbfd5555555555555UL, 0xbfa1111111111111UL,
        0xbf6b4e81b4e81b4fUL, 0xbf35d867c3ece2a5UL, 0xbf0179ec9cbd821eUL, 0xbecbf647612f3696UL,
        0xbe965e9f80f29212UL, 0xbe61e54c672874dbUL, 0xbe2ca213d840baf8UL, 0xbdf6e80fe033c8c6UL,
        0xbdc2533fe68fd3d2UL, 0xbd8d51ffd74c861cUL, 0xbd5774ccac3d3817UL, 0xbd22c3d6f030f9acUL,
        0xbcee0624b3818f79UL, 0xbcb804ea293472c7UL, 0xbc833721ba905bd3UL, 0xbc4ebe9c5db3c61eUL,
        0xbc18987d17c304e5UL, 0xbbe3ad30dfcf371dUL, 0xbbaf7b816618582fUL, 0xbb792f9ab81379bfUL,
        0xbb442615600f9499UL, 0xbb101e77800c76e1UL, 0xbad9ca58cce0be35UL, 0xbaa4a1e0a3e6fe90UL,
        0xba708180831f320dUL, 0xba3a68cd9e985016UL, 0x446696695dbd1cc3UL, 0x443211ede4974a35UL,
        0x43fce97ca0f21056UL, 0x43c7213080c1a6acUL, 0x439280f39a348556UL, 0x435d9b1f5d20d557UL,
        0x4327af4c4a80aaacUL, 0x42f2f2a36ecd5556UL, 0x42be51057e155558UL, 0x428840d131aaaaacUL,
        0x4253670dc1555557UL, 0x421f0b4935555557UL, 0x41e8d5d42aaaaaacUL, 0x41b3de4355555556UL,
        0x417fca0555555556UL, 0x41496e6aaaaaaaabUL, 0x4114585555555555UL, 0x40e046aaaaaaaaabUL,
        0x40aa0aaaaaaaaaaaUL, 0x4074d55555555555UL, 0x4040aaaaaaaaaaabUL, 0x400aaaaaaaaaaaabUL,
        0x3fd5555555555555UL, 0x3fa1111111111111UL, 0x3f6b4e81b4e81b4fUL, 0x3f35d867c3ece2a5UL,
        0x3f0179ec9cbd821eUL, 0x3ecbf647612f3696UL, 0x3e965e9f80f29212UL, 0x3e61e54c672874dbUL,
        0x3e2ca213d840baf8UL, 0x3df6e80fe033c8c6UL, 0x3dc2533fe68fd3d2UL, 0x3d8d51ffd74c861cUL,
        0x3d5774ccac3d3817UL, 0x3d22c3d6f030f9acUL, 0x3cee0624b3818f79UL, 0x3cb804ea293472c7UL,
        0x3c833721ba905bd3UL, 0x3c4ebe9c5db3c61eUL, 0x3c18987d17c304e5UL, 0x3be3ad30dfcf371dUL,
        0x3baf7b816618582fUL, 0x3b792f9ab81379bfUL, 0x3b442615600f9499UL, 0x3b101e77800c76e1UL,
        0x3ad9ca58cce0be35UL, 0x3aa4a1e0a3e6fe90UL, 0x3a708180831f320dUL, 0x3a3a68cd9e985016UL,
        0x4024000000000000UL, 0x4014000000000000UL, 0x3fe0000000000000UL, 0x3fa999999999999aUL,
        0x3f747ae147ae147bUL, 0x3f40624dd2f1a9fcUL, 0x3f0a36e2eb1c432dUL, 0x3ed4f8b588e368f1UL,
        0x3ea0c6f7a0b5ed8dUL, 0x3e6ad7f29abcaf48UL, 0x3e35798ee2308c3aUL, 0x3ed539223589fa95UL,
        0x3ed4ff26cd5a7781UL, 0x3ed4f95a762283ffUL, 0x3ed4f8c60703520cUL, 0x3ed4f8b72f19cd0dUL,
        0x3ed4f8b5b31c0c8dUL, 0x3ed4f8b58d1c461aUL, 0x3ed4f8b5894f7f0eUL, 0x3ed4f8b588ee37f3UL,
        0x3ed4f8b588e47da4UL, 0x3ed4f8b588e3849cUL, 0x3ed4f8b588e36bb5UL, 0x3ed4f8b588e36937UL,
        0x3ed4f8b588e368f8UL, 0x3ed4f8b588e368f1UL, 0x3ff0000000000000UL, 0xbff0000000000000UL,
        0xbfeffffffffffffaUL, 0xbfeffffffffffffbUL, 0x3feffffffffffffaUL, 0x3feffffffffffffbUL,
        0x3feffffffffffffcUL, 0x3feffffffffffffeUL, 0xbfefffffffffffffUL, 0xbfefffffffffffffUL,
        0x3fefffffffffffffUL, 0x3fefffffffffffffUL, 0x3fd3333333333332UL, 0x3fd3333333333333UL,
        0x3fd3333333333334UL, 0x0010000000000000UL, 0x000ffffffffffffdUL, 0x000fffffffffffffUL,
        0x7fefffffffffffffUL, 0xffefffffffffffffUL, 0x4340000000000000UL, 0xc340000000000000UL,
        0x4430000000000000UL, 0x44b52d02c7e14af5UL, 0x44b52d02c7e14af6UL, 0x44b52d02c7e14af7UL,
        0x444b1ae4d6e2ef4eUL, 0x444b1ae4d6e2ef4fUL, 0x444b1ae4d6e2ef50UL, 0x3eb0c6f7a0b5ed8cUL,
        0x3eb0c6f7a0b5ed8dUL, 0x41b3de4355555553UL, 0x41b3de4355555554UL, 0x41b3de4355555555UL,
        0x41b3de4355555556UL, 0x41b3de4355555557UL, 0xbecbf647612f3696UL, 0x43143ff3c1cb0959UL,
        ];

        private readonly byte[] _block = new byte[32];
        private int _index;
        private int _dataOffset = 32;
        private byte[] _data = [];

        public double Next()
        {
            double f = 0;
            if (_index < _static.Length)
            {
                f = BitConverter.Int64BitsToDouble(unchecked((long)_static[_index]));
            }
            else if (_index < _static.Length + 2000)
            {
                f = BitConverter.Int64BitsToDouble(unchecked((long)(0x0010000000000000UL + (ulong)(_index - _static.Length))));
            }
            else
            {
                while (f == 0 || double.IsNaN(f) || double.IsInfinity(f))
                {
                    if (_dataOffset >= 32)
                    {
                        _data = SHA256.HashData(_data.Length == 0 ? _block : _data);
                        _dataOffset = 0;
                    }

                    f = BitConverter.Int64BitsToDouble(BitConverter.ToInt64(_data, _dataOffset));
                    _dataOffset += 8;
                }
            }

            _index++;
            return f;
        }
    }
}
