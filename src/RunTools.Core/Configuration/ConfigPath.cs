using System.Globalization;
using System.Text;

namespace RunTools.Core.Configuration;

/// <summary>
/// One spelling of key paths (<c>generator.model</c>, <c>items[2]</c>, <c>['a.b']</c>) shared by
/// error messages and drift reports, so an operator sees the same path everywhere.
/// </summary>
internal static class ConfigPath
{
    public static string Key(string parent, string key)
    {
        if (NeedsQuoting(key))
        {
            var sb = new StringBuilder(parent.Length + key.Length + 4);
            sb.Append(parent).Append("['");
            foreach (char c in key)
            {
                // Backslash is escaped too so that the quoted form is unambiguous.
                if (c == '\'' || c == '\\')
                {
                    sb.Append('\\');
                }

                sb.Append(c);
            }

            return sb.Append("']").ToString();
        }

        return parent.Length == 0 ? key : parent + "." + key;
    }

    public static string Index(string parent, int index) =>
        parent + "[" + index.ToString(CultureInfo.InvariantCulture) + "]";

    /// <summary>How a path reads in a message; the root has no name of its own.</summary>
    public static string Display(string path) => path.Length == 0 ? "(root)" : path;

    private static bool NeedsQuoting(string key)
    {
        if (key.Length == 0)
        {
            return true;
        }

        foreach (char c in key)
        {
            if (c == '.' || c == '[' || c == ']' || c == '\'' || char.IsWhiteSpace(c))
            {
                return true;
            }
        }

        return false;
    }
}
