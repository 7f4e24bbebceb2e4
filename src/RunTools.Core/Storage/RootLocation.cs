using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace RunTools.Core.Storage;

/// <summary>What kind of place a runs root is.</summary>
public enum RootKind
{
    /// <summary>A folder of run directories (the embedded default).</summary>
    Folder,

    /// <summary>A PostgreSQL database and schema (docs/postgresql-store.md).</summary>
    PostgreSql,
}

/// <summary>
/// A runs root as the user named it (-Root, $env:RUNTOOLS_ROOT): a folder, or a PostgreSQL
/// connection URI (<c>postgresql://user@host:port/db?schema=s</c>, also <c>postgres://</c>). The one
/// place a root string is told apart, so every cmdlet reads it the same way. <see cref="Display"/>
/// is what messages and RunInfo.Root show: for a database it never holds the password.
/// </summary>
/// <remarks>
/// Only URIs select the database, never Npgsql keyword strings: any string can be a folder name,
/// and a URI's scheme is the one unambiguous mark (it is also what a user pastes into an
/// environment variable). TLS and other options go in the query, with libpq's names.
/// </remarks>
public sealed class RootLocation
{
    /// <summary>The schema a URI without <c>?schema=</c> uses.</summary>
    public const string DefaultSchema = "runtools";

    private static readonly char[] s_ampersand = { '&' };
    private static readonly char[] s_quoted = { ';', '=', '"', '\'' };

    private static readonly Regex s_schema = new("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant);

    // libpq's query parameter names, as users know them from psql, mapped to Npgsql's keywords.
    private static readonly Dictionary<string, string> s_options = new(StringComparer.Ordinal)
    {
        ["sslmode"] = "SSL Mode",
        ["sslrootcert"] = "Root Certificate",
        ["sslcert"] = "SSL Certificate",
        ["sslkey"] = "SSL Key",
        ["sslpassword"] = "SSL Password",
        ["application_name"] = "Application Name",
        ["connect_timeout"] = "Timeout",
        ["target_session_attrs"] = "Target Session Attributes",
        ["options"] = "Options",
    };

    private RootLocation(RootKind kind, string display, string? folderPath, string? connectionString, string? schema)
    {
        Kind = kind;
        Display = display;
        FolderPath = folderPath;
        ConnectionString = connectionString;
        Schema = schema;
    }

    public RootKind Kind { get; }

    /// <summary>For messages and RunInfo.Root: the folder's full path, or the URI without its password (itself a valid URI).</summary>
    public string Display { get; }

    /// <summary>The folder's full path; null for a database.</summary>
    public string? FolderPath { get; }

    /// <summary>The Npgsql connection string (with the password): for the store only, never shown.</summary>
    internal string? ConnectionString { get; }

    /// <summary>The database schema holding the runs; null for a folder.</summary>
    public string? Schema { get; }

    /// <summary>
    /// The <c>lease</c> parameter: how many seconds an owner's lease lasts without a heartbeat, so
    /// how long a crashed owner's run stays Running before it reads Interrupted (and how long a live
    /// owner waits out an unreachable database). Null: the store's default (30 s).
    /// </summary>
    public int? LeaseSeconds { get; private set; }

    /// <summary>
    /// A database root's store without how it is reached: host, port, database and schema, not the
    /// user or the lease (two roots naming one store share its local folders). Null for a folder.
    /// </summary>
    internal string? StoreIdentity { get; private set; }

    internal const int MinLeaseSeconds = 2;

    internal const int MaxLeaseSeconds = 3600;

    public override string ToString() => Display;

    /// <summary>Whether <paramref name="root"/> names a database rather than a folder (it starts with postgresql: or postgres:).</summary>
    public static bool IsStoreUri(string? root) =>
        root is not null && (root.StartsWith("postgresql:", StringComparison.OrdinalIgnoreCase) || root.StartsWith("postgres:", StringComparison.OrdinalIgnoreCase));

    /// <summary>A folder root; <paramref name="resolveFolder"/> makes a relative path full (PowerShell's current location).</summary>
    public static RootLocation Parse(string root, Func<string, string> resolveFolder)
    {
        if (resolveFolder is null)
        {
            throw new ArgumentNullException(nameof(resolveFolder));
        }

        if (string.IsNullOrWhiteSpace(root))
        {
            throw new RunToolsException(ErrorIds.RootNotFound, RunToolsErrorCategory.InvalidArgument, "The runs root is empty. Pass -Root or set $env:RUNTOOLS_ROOT.", root);
        }

        if (!IsStoreUri(root))
        {
            string full = System.IO.Path.GetFullPath(resolveFolder(root));
            return new RootLocation(RootKind.Folder, full, full, null, null);
        }

        return ParseUri(root);
    }

    private static RootLocation ParseUri(string uri)
    {
        int schemeEnd = uri.IndexOf("://", StringComparison.Ordinal);
        string scheme = schemeEnd < 0 ? string.Empty : uri.Substring(0, schemeEnd).ToLowerInvariant();
        if (scheme is not ("postgresql" or "postgres"))
        {
            throw Invalid("it does not start with postgresql:// or postgres://");
        }

        string rest = uri.Substring(schemeEnd + 3);
        if (rest.IndexOf('#') >= 0)
        {
            throw Invalid("it has a '#' fragment (encode a '#' in a password as %23)");
        }

        string query = string.Empty;
        int q = rest.IndexOf('?');
        if (q >= 0)
        {
            query = rest.Substring(q + 1);
            rest = rest.Substring(0, q);
        }

        int slash = rest.IndexOf('/');
        string authority = slash < 0 ? rest : rest.Substring(0, slash);
        string database = slash < 0 ? string.Empty : Decode(rest.Substring(slash + 1));
        string? user = null, password = null;
        int at = authority.LastIndexOf('@');
        if (at >= 0)
        {
            string userInfo = authority.Substring(0, at);
            authority = authority.Substring(at + 1);
            int colon = userInfo.IndexOf(':');
            user = Decode(colon < 0 ? userInfo : userInfo.Substring(0, colon));
            password = colon < 0 ? null : Decode(userInfo.Substring(colon + 1));
        }

        string host = string.Empty;
        string? port = null;
        if (authority.StartsWith("[", StringComparison.Ordinal))
        {
            int close = authority.IndexOf(']');
            if (close < 0)
            {
                throw Invalid("an IPv6 host has no closing ']'");
            }

            host = authority.Substring(1, close - 1);
            string after = authority.Substring(close + 1);
            port = after.StartsWith(":", StringComparison.Ordinal) ? after.Substring(1) : after.Length == 0 ? null : throw Invalid($"'{after}' follows the IPv6 host");
        }
        else if (authority.IndexOf(',') >= 0)
        {
            host = Decode(authority); // several hosts, each with its own port: Npgsql reads the list as it is
        }
        else
        {
            int colon = authority.LastIndexOf(':');
            host = Decode(colon < 0 ? authority : authority.Substring(0, colon));
            port = colon < 0 ? null : authority.Substring(colon + 1);
        }

        string schema = DefaultSchema;
        int? leaseSeconds = null;
        var options = new List<KeyValuePair<string, string>>();
        foreach (string pair in query.Split(s_ampersand, StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=');
            string key = Decode(eq < 0 ? pair : pair.Substring(0, eq));
            string value = eq < 0 ? string.Empty : Decode(pair.Substring(eq + 1));
            switch (key)
            {
                case "schema":
                    schema = value;
                    break;
                case "host":
                    host = value;
                    break;
                case "port":
                    port = value;
                    break;
                case "dbname":
                    database = value;
                    break;
                case "user":
                    user = value;
                    break;
                case "password":
                    password = value;
                    break;
                case "lease":
                    leaseSeconds = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int seconds) && seconds is >= MinLeaseSeconds and <= MaxLeaseSeconds
                        ? seconds
                        : throw Invalid($"the lease '{value}' is not a number of seconds from {MinLeaseSeconds} to {MaxLeaseSeconds}");
                    break;
                default:
                    if (!s_options.TryGetValue(key, out string? keyword))
                    {
                        throw Invalid($"'{key}' is not a parameter RunTools knows (use schema, lease, host, port, dbname, user, password, {string.Join(", ", s_options.Keys)})");
                    }

                    options.Add(new KeyValuePair<string, string>(keyword, value));
                    break;
            }
        }

        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out int portNumber) || portNumber is < 1 or > 65535))
        {
            throw Invalid($"the port '{port}' is not a number from 1 to 65535");
        }

        if (!s_schema.IsMatch(schema))
        {
            throw Invalid($"the schema '{schema}' is not a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)");
        }

        if (host.Length == 0)
        {
            host = "localhost";
        }

        var connection = new StringBuilder();
        Append(connection, "Host", host);
        if (port is not null)
        {
            Append(connection, "Port", port);
        }

        if (database.Length > 0)
        {
            Append(connection, "Database", database);
        }

        if (!string.IsNullOrEmpty(user))
        {
            Append(connection, "Username", user!);
        }

        if (!string.IsNullOrEmpty(password))
        {
            Append(connection, "Password", password!);
        }

        foreach (var option in options)
        {
            Append(connection, option.Key, option.Value);
        }

        // The display is a URI too (pasting it back selects the same store), minus every secret.
        var display = new StringBuilder("postgresql://");
        if (!string.IsNullOrEmpty(user))
        {
            display.Append(Uri.EscapeDataString(user)).Append('@');
        }

        display.Append(host.IndexOf(':') >= 0 && host.IndexOf(',') < 0 && host.IndexOf('/') < 0 ? "[" + host + "]" : EncodeHost(host));
        display.Append(':').Append(port ?? "5432");
        display.Append('/').Append(Uri.EscapeDataString(database));
        display.Append("?schema=").Append(schema);
        if (leaseSeconds is { } lease)
        {
            display.Append("&lease=").Append(lease.ToString(CultureInfo.InvariantCulture));
        }

        // Which store this is, whoever connects and with whatever lease: host, port, database, schema.
        string identity = $"{(host.IndexOf(':') >= 0 && host.IndexOf(',') < 0 && host.IndexOf('/') < 0 ? "[" + host + "]" : EncodeHost(host))}:{port ?? "5432"}/{Uri.EscapeDataString(database)}?schema={schema}";
        return new RootLocation(RootKind.PostgreSql, display.ToString(), null, connection.ToString(), schema) { LeaseSeconds = leaseSeconds, StoreIdentity = identity };

        RunToolsException Invalid(string why) => new(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
            $"The runs root is not a usable PostgreSQL URI: {why}. Write it as postgresql://user@host:port/database?schema=name (a password in the URI or, better, in ~/.pgpass or $env:PGPASSWORD); see about_RunTools.", null);
    }

    private static string Decode(string text)
    {
        try
        {
            return Uri.UnescapeDataString(text);
        }
        catch (UriFormatException)
        {
            return text;
        }
    }

    // A socket folder (/run/postgresql) is a host too; its slashes are encoded so the display stays one URI.
    private static string EncodeHost(string host) => host.Replace("%", "%25").Replace("/", "%2F").Replace("@", "%40");

    /// <summary>Quotes a value the way DbConnectionStringBuilder reads it back.</summary>
    private static void Append(StringBuilder builder, string key, string value)
    {
        bool quote = value.IndexOfAny(s_quoted) >= 0 || value.Trim().Length != value.Length;
        builder.Append(key).Append('=').Append(quote ? "\"" + value.Replace("\"", "\"\"") + "\"" : value).Append(';');
    }
}
