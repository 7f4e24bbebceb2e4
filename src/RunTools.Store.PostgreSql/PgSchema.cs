using System;
using System.Collections.Generic;
using System.Text.RegularExpressions;
using Npgsql;
using RunTools.Core;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// The store's tables (docs/postgresql-store.md), created and migrated by the store itself:
/// <c>schema_version</c> holds one row per applied migration, and a migration runs in one
/// transaction under an advisory lock, so concurrent first uses apply it once.
/// </summary>
internal static class PgSchema
{
    /// <summary>The schema version this build writes and reads.</summary>
    public const int Version = 3;

    // Identifiers cannot be bound as parameters: the schema name is checked, then quoted.
    private static readonly Regex s_identifier = new("^[a-z_][a-z0-9_]{0,62}$", RegexOptions.CultureInvariant);

    /// <summary>Migration N takes the schema from version N-1 to N. "{s}" is the quoted schema name.</summary>
    private static readonly string[] s_migrations =
    {
        """
        CREATE TABLE {s}.runs (
            run_id      text PRIMARY KEY,
            name        text NOT NULL,
            status      text NOT NULL,
            journal_seq bigint NOT NULL,
            snapshot    bytea NOT NULL,
            updated_at  timestamptz NOT NULL DEFAULT now());
        CREATE TABLE {s}.events (
            run_id text NOT NULL,
            seq    bigint NOT NULL,
            type   text NOT NULL,
            line   bytea NOT NULL,
            PRIMARY KEY (run_id, seq));
        CREATE TABLE {s}.leases (
            run_id       text PRIMARY KEY,
            session      uuid NOT NULL,
            host         text NOT NULL,
            pid          integer NOT NULL,
            started_at   timestamptz NOT NULL,
            acquired_at  timestamptz NOT NULL,
            heartbeat_at timestamptz NOT NULL,
            expires_at   timestamptz NOT NULL);
        CREATE TABLE {s}.stop_requests (
            run_id       text PRIMARY KEY,
            requested_at timestamptz NOT NULL,
            requested_by text NOT NULL,
            reason       text);
        CREATE SEQUENCE {s}.blob_content_ids;
        CREATE TABLE {s}.blob_contents (
            id         bigint PRIMARY KEY,
            sha256     bytea NOT NULL UNIQUE,
            size       bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE {s}.blob_chunks (
            content_id bigint NOT NULL,
            n          integer NOT NULL,
            data       bytea NOT NULL,
            PRIMARY KEY (content_id, n));
        ALTER TABLE {s}.blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
        CREATE TABLE {s}.blobs (
            run_id     text NOT NULL,
            name       text NOT NULL,
            content_id bigint NOT NULL REFERENCES {s}.blob_contents (id),
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, name));
        """,
        // 2: workers joining a running attempt (Join-Run): their registrations, the claims that
        // give each item of an items-only step to one process, and the events workers recorded
        // that the owner has not transcribed into the run's log yet.
        """
        CREATE TABLE {s}.workers (
            run_id     text NOT NULL,
            worker     uuid NOT NULL,
            attempt    integer NOT NULL,
            host       text NOT NULL,
            pid        integer NOT NULL,
            joined_at  timestamptz NOT NULL DEFAULT now(),
            admitted   boolean NOT NULL DEFAULT false,
            expires_at timestamptz NOT NULL,
            PRIMARY KEY (run_id, worker));
        CREATE TABLE {s}.item_claims (
            run_id     text NOT NULL,
            step       text NOT NULL,
            key        text NOT NULL,
            holder     uuid NOT NULL,
            attempt    integer NOT NULL,
            claimed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (run_id, step, key));
        CREATE TABLE {s}.worker_events (
            run_id text NOT NULL,
            worker uuid NOT NULL,
            wseq   bigint NOT NULL,
            step   text NOT NULL,
            key    text NOT NULL,
            line   bytea NOT NULL,
            PRIMARY KEY (run_id, worker, wseq));
        """,
        // 3: Get-Run lists runs in ordinal id order (as from folders); this index gives that order
        // as it reads, so a listing streams instead of sorting every snapshot first.
        """
        CREATE INDEX runs_by_ordinal_id ON {s}.runs (run_id COLLATE "C");
        """,
    };

    public static string Quote(string schema)
    {
        if (!s_identifier.IsMatch(schema))
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument,
                $"'{schema}' is not a usable schema name for the run store: use 1 to 63 lower-case letters, digits and underscores, not starting with a digit.", schema);
        }

        return "\"" + schema + "\"";
    }

    /// <summary>
    /// Brings <paramref name="schema"/> to <see cref="Version"/>: creates the schema when it is
    /// missing (only then: a role that may not create schemas works in one made for it), applies the
    /// missing migrations, and refuses a schema a newer RunTools migrated further. Returns the
    /// migrations applied (empty when the schema was current).
    /// </summary>
    public static IReadOnlyList<int> Migrate(PgDatabase db, string schema)
    {
        string s = Quote(schema);
        return db.Run("prepare the run store's schema", idempotent: true, connection =>
        {
            var applied = new List<int>();
            using var transaction = connection.BeginTransaction();
            using (var lockCommand = db.Command(connection, "SELECT pg_advisory_xact_lock(hashtext('runtools-schema:' || @schema))", transaction))
            {
                lockCommand.Parameters.AddWithValue("schema", schema);
                lockCommand.ExecuteNonQuery();
            }

            if (!Exists(db, connection, transaction, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = @schema)", schema))
            {
                Execute(db, connection, transaction, $"CREATE SCHEMA {s}", schema, "create");
            }

            int current = 0;
            if (Exists(db, connection, transaction, "SELECT to_regclass(quote_ident(@schema) || '.schema_version') IS NOT NULL", schema))
            {
                using var read = db.Command(connection, $"SELECT coalesce(max(version), 0) FROM {s}.schema_version", transaction);
                current = Convert.ToInt32(read.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
            }
            else
            {
                Execute(db, connection, transaction,
                    $"CREATE TABLE {s}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())", schema, "create tables in");
            }

            if (current > Version)
            {
                throw new RunToolsException(ErrorIds.StoreSchemaUnusable, RunToolsErrorCategory.InvalidData,
                    $"The run store's schema '{schema}' in {db.Description} is at version {current}; this RunTools knows version {Version}. Update RunTools to use it.", schema);
            }

            for (int version = current + 1; version <= Version; version++)
            {
                Execute(db, connection, transaction, s_migrations[version - 1].Replace("{s}", s), schema, "create tables in");
                using var record = db.Command(connection, $"INSERT INTO {s}.schema_version (version) VALUES (@version)", transaction);
                record.Parameters.AddWithValue("version", version);
                record.ExecuteNonQuery();
                applied.Add(version);
            }

            transaction.Commit();
            return applied;
        });
    }

    private static bool Exists(PgDatabase db, NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string schema)
    {
        using var command = db.Command(connection, sql, transaction);
        command.Parameters.AddWithValue("schema", schema);
        return command.ExecuteScalar() is true;
    }

    private static void Execute(PgDatabase db, NpgsqlConnection connection, NpgsqlTransaction transaction, string sql, string schema, string verb)
    {
        try
        {
            using var command = db.Command(connection, sql, transaction);
            command.ExecuteNonQuery();
        }
        catch (PostgresException ex) when (ex.SqlState == "42501")
        {
            throw new RunToolsException(ErrorIds.StoreSchemaUnusable, RunToolsErrorCategory.PermissionDenied,
                $"The run store's role may not {verb} schema '{schema}' in {db.Description} ({db.Redact(ex.MessageText)}). Have an administrator run: CREATE SCHEMA {schema} AUTHORIZATION <the role>; (or grant the role CREATE on it), then try again.", schema);
        }
    }
}
