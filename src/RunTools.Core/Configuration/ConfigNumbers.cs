using System;
using System.Globalization;
using System.Numerics;
using System.Text.Json.Nodes;

namespace RunTools.Core.Configuration;

internal enum NumberIssue
{
    None,
    IntegerTooLarge,
    NotFinite,
}

/// <summary>
/// RFC 8785 holds every number as an IEEE-754 double. Integers beyond 2^53 would silently change
/// value, so they are refused instead; everything else is stored as long (when whole) or double.
/// </summary>
internal static class ConfigNumbers
{
    public const long MaxSafeInteger = 9007199254740992; // 2^53

    public static NumberIssue FromInteger(BigInteger value, out JsonValue? node)
    {
        if (BigInteger.Abs(value) > MaxSafeInteger)
        {
            node = null;
            return NumberIssue.IntegerTooLarge;
        }

        node = JsonValue.Create((long)value);
        return NumberIssue.None;
    }

    public static NumberIssue FromDouble(double value, out JsonValue? node)
    {
        if (double.IsNaN(value) || double.IsInfinity(value))
        {
            node = null;
            return NumberIssue.NotFinite;
        }

        node = JsonValue.Create(value);
        return NumberIssue.None;
    }

    /// <summary>
    /// Reads a JSON number literal. A literal without fraction or exponent is an integer and must
    /// fit in ±2^53 unless <paramref name="allowLargeIntegers"/> (canonical text, whose large
    /// integers were produced from doubles and so are exact).
    /// </summary>
    public static NumberIssue FromJsonLiteral(string literal, bool allowLargeIntegers, out JsonValue? node)
    {
        bool isInteger = literal.IndexOfAny(['.', 'e', 'E']) < 0;
        if (isInteger)
        {
            var big = BigInteger.Parse(literal, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
            if (!allowLargeIntegers || BigInteger.Abs(big) <= MaxSafeInteger)
            {
                return FromInteger(big, out node);
            }
        }

        double d;
        try
        {
            d = double.Parse(literal, NumberStyles.Float, CultureInfo.InvariantCulture);
        }
        catch (OverflowException)
        {
            d = double.PositiveInfinity; // .NET Framework throws where .NET Core returns infinity
        }

        return FromDouble(d, out node);
    }
}
