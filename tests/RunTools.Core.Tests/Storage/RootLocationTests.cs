using System;
using System.IO;
using Npgsql;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>How a root string is told apart (folder or database), read, and shown without its password.</summary>
public sealed class RootLocationTests
{
    private static RootLocation Parse(string root) => RootLocation.Parse(root, path => Path.Combine("/base", path));

    [Fact]
    public void A_folder_root_is_resolved_by_the_caller_and_shown_as_its_full_path()
    {
        var root = Parse("runs");

        Assert.Equal(RootKind.Folder, root.Kind);
        Assert.Equal(Path.GetFullPath("/base/runs"), root.FolderPath);
        Assert.Equal(root.FolderPath, root.Display);
        Assert.Null(root.Schema);
        Assert.Null(root.ConnectionString);
    }

    [Fact]
    public void Every_root_naming_one_store_has_one_local_folder_whatever_its_user_or_lease()
    {
        static string Folder(string uri) => LocalFolders.ForStore(RootLocation.Parse(uri, Path.GetFullPath));

        string plain = Folder("postgresql://db01/jobs?schema=nightly");
        Assert.Equal(plain, Folder("postgresql://ops:secret@db01:5432/jobs?schema=nightly&lease=10"));
        Assert.Equal(plain, Folder("postgresql://reporter@db01/jobs?schema=nightly&sslmode=require"));
        Assert.StartsWith("pg-db01_5432_jobs_schema_nightly-", Path.GetFileName(plain), StringComparison.Ordinal);

        // Another schema, database, port or host is another store, with a folder of its own.
        Assert.NotEqual(plain, Folder("postgresql://db01/jobs?schema=weekly"));
        Assert.NotEqual(plain, Folder("postgresql://db01/jobs2?schema=nightly"));
        Assert.NotEqual(plain, Folder("postgresql://db01:5433/jobs?schema=nightly"));
        Assert.NotEqual(plain, Folder("postgresql://db02/jobs?schema=nightly"));
    }

    [Fact]
    public void A_uri_becomes_an_npgsql_connection_string_and_a_display_without_the_password()
    {
        var root = Parse("postgresql://ops%2Djobs:p%40ss%3Bw%3Drd@db.example:6543/jobs?schema=nightly&sslmode=require&application_name=etl");

        Assert.Equal(RootKind.PostgreSql, root.Kind);
        Assert.Null(root.FolderPath);
        Assert.Equal("nightly", root.Schema);
        Assert.Equal("postgresql://ops-jobs@db.example:6543/jobs?schema=nightly", root.Display);
        Assert.Equal(root.Display, root.ToString());
        var builder = new NpgsqlConnectionStringBuilder(root.ConnectionString);
        Assert.Equal("db.example", builder.Host);
        Assert.Equal(6543, builder.Port);
        Assert.Equal("jobs", builder.Database);
        Assert.Equal("ops-jobs", builder.Username);
        Assert.Equal("p@ss;w=rd", builder.Password); // quoted, so ';' and '=' survive
        Assert.Equal(SslMode.Require, builder.SslMode);
        Assert.Equal("etl", builder.ApplicationName);
    }

    [Theory]
    [InlineData("postgres://me@localhost/db", "postgresql://me@localhost:5432/db?schema=runtools")]
    [InlineData("POSTGRESQL://me@localhost/db", "postgresql://me@localhost:5432/db?schema=runtools")]
    [InlineData("postgresql:///db?host=/run/postgresql&user=me", "postgresql://me@%2Frun%2Fpostgresql:5432/db?schema=runtools")]
    [InlineData("postgresql://me@%2Ftmp%2Fpg:5433/db", "postgresql://me@%2Ftmp%2Fpg:5433/db?schema=runtools")]
    [InlineData("postgresql://me@[::1]:5433/db", "postgresql://me@[::1]:5433/db?schema=runtools")]
    [InlineData("postgresql://localhost", "postgresql://localhost:5432/?schema=runtools")]
    [InlineData("postgresql://me:pw@h/db?password=other&sslpassword=x&schema=s1", "postgresql://me@h:5432/db?schema=s1")]
    public void The_display_is_a_uri_that_selects_the_same_store_and_holds_no_secret(string uri, string display)
    {
        var root = Parse(uri);

        Assert.Equal(display, root.Display);
        Assert.DoesNotContain("pw", root.Display, StringComparison.Ordinal);
        Assert.DoesNotContain("other", root.Display, StringComparison.Ordinal);
        var again = Parse(root.Display);
        Assert.Equal(root.Display, again.Display);
        var first = new NpgsqlConnectionStringBuilder(root.ConnectionString);
        var second = new NpgsqlConnectionStringBuilder(again.ConnectionString);
        Assert.Equal((first.Host, first.Port, first.Database, first.Username), (second.Host, second.Port, second.Database, second.Username));
        Assert.Null(second.Password);
    }

    [Fact]
    public void The_lease_parameter_sets_the_owners_lease_and_stays_in_the_display()
    {
        var root = Parse("postgresql://me:pw@h/db?lease=5&schema=s1");
        var plain = Parse("postgresql://me:pw@h/db?schema=s1");

        Assert.Equal(5, root.LeaseSeconds);
        Assert.Null(plain.LeaseSeconds);
        Assert.Equal("postgresql://me@h:5432/db?schema=s1&lease=5", root.Display);
        Assert.Equal(5, Parse(root.Display).LeaseSeconds); // pasting the display back keeps it
        Assert.DoesNotContain("lease", root.ConnectionString!, StringComparison.OrdinalIgnoreCase); // RunTools' own, not Npgsql's
    }

    [Fact]
    public void A_socket_folder_given_as_the_host_reaches_npgsql_as_a_path()
    {
        var builder = new NpgsqlConnectionStringBuilder(Parse("postgresql://me@%2Ftmp%2Fpg:5433/db").ConnectionString);

        Assert.Equal("/tmp/pg", builder.Host);
        Assert.Equal(5433, builder.Port);
    }

    [Theory]
    [InlineData("postgresql:jobs", "does not start with postgresql://")]
    [InlineData("postgres:/db", "does not start with postgresql://")]
    [InlineData("postgresql://me:sekrit@h:99999/db", "port '99999'")]
    [InlineData("postgresql://me:sekrit@h:port/db", "port 'port'")]
    [InlineData("postgresql://me:sekrit@h/db?schema=Nightly-1", "schema 'Nightly-1'")]
    [InlineData("postgresql://me:sekrit@h/db?pooling=false", "'pooling' is not a parameter")]
    [InlineData("postgresql://me:sekrit@h/db#x", "fragment")]
    [InlineData("postgresql://me:sekrit@h/db?lease=1", "lease '1'")]
    [InlineData("postgresql://me:sekrit@h/db?lease=3601", "lease '3601'")]
    [InlineData("postgresql://me:sekrit@h/db?lease=ten", "lease 'ten'")]
    public void A_malformed_uri_is_an_argument_error_that_says_why_and_never_shows_the_password(string uri, string why)
    {
        var error = Assert.Throws<RunToolsException>(() => Parse(uri));

        Assert.Equal(ErrorIds.InvalidArgument, error.ErrorId);
        Assert.Contains(why, error.Message, StringComparison.Ordinal);
        Assert.Contains("postgresql://user@host:port/database?schema=name", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("sekrit", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("postgresql://x", true)]
    [InlineData("Postgres://x", true)]
    [InlineData("postgresql:", true)]
    [InlineData("./postgresql", false)]
    [InlineData("C:\\runs", false)]
    [InlineData("pg://x", false)]
    public void Only_the_postgresql_schemes_name_a_database(string root, bool isStore) =>
        Assert.Equal(isStore, RootLocation.IsStoreUri(root));

    [Fact]
    public void An_empty_root_says_how_to_name_one() =>
        Assert.Equal(ErrorIds.RootNotFound, Assert.Throws<RunToolsException>(() => Parse(" ")).ErrorId);

    [Theory]
    [InlineData("run-*", "run-%")]
    [InlineData("a?c", "a_c")]
    [InlineData("nightly_load", "nightly\\_load")]
    [InlineData("100%", "100\\%")]
    [InlineData("back\\slash", "back\\\\slash")]
    [InlineData("`*literal`?", "*literal?")]
    [InlineData("[ab]*", null)]
    public void Wildcards_become_like_patterns_with_like_s_own_characters_escaped(string wildcard, string? like) =>
        Assert.Equal(like, PgRunCatalog.LikePattern(wildcard));
}
