using System;
using System.IO;
using System.Linq;
using Npgsql;
using RunTools.Core.State;
using RunTools.Core.Storage;
using RunTools.Store.PostgreSql;
using Xunit;

namespace RunTools.Core.Tests.Storage;

/// <summary>
/// The PostgreSQL store against the store contract, on a real cluster (<see cref="PostgreSqlCluster"/>),
/// as the app role that owns only this class's schema. A "reopened" store is a second
/// <see cref="PostgreSqlStore"/> with its own connection pool, as another process would have.
/// </summary>
[Collection(PostgreSqlCollection.Name)]
public sealed class PostgreSqlRunStoreTests : RunStoreContract, IDisposable
{
    private readonly PostgreSqlCluster _cluster;
    private readonly TempDir _dir = new();
    private readonly PostgreSqlStore _store;
    private readonly PostgreSqlStore _other;

    public PostgreSqlRunStoreTests(PostgreSqlCluster cluster)
    {
        _cluster = cluster;
        string schema = cluster.NewSchema("contract");
        _store = PostgreSqlStore.Open(cluster.Options(schema));
        _other = PostgreSqlStore.Open(cluster.Options(schema));
    }

    public void Dispose()
    {
        _store.Dispose();
        _other.Dispose();
        _dir.Dispose();
    }

    [Fact]
    public void Blobs_take_the_names_the_folder_store_gives_and_one_content_is_stored_once()
    {
        var store = CreateRun("names");

        Assert.Equal("steps/s/output.clixml", store.Blobs.WriteStepOutput("s", 1, "clixml", new MemoryStream(Runs.Bytes("a"))).Name);
        Assert.Equal("steps/s/attempt-2/output.clixml", store.Blobs.WriteStepOutput("s", 2, "clixml", new MemoryStream(Runs.Bytes("a"))).Name);
        Assert.Equal("steps/t/output.bin", store.Blobs.WriteStepOutput("t", 1, "../x", new MemoryStream(Runs.Bytes("c"))).Name);
        Assert.Equal("artifacts/sub/a.txt", store.Blobs.WriteArtifact("sub/a.txt", 1, new MemoryStream(Runs.Bytes("d"))).Name);
        Assert.Equal("artifacts/attempt-3/sub/a.txt", store.Blobs.WriteArtifact("sub/a.txt", 3, new MemoryStream(Runs.Bytes("e"))).Name);

        // "a" was written twice under two names: one content row.
        Assert.Equal(4L, Scalar(store, "SELECT count(*) FROM {s}.blob_contents"));
        Assert.Equal(5L, Scalar(store, "SELECT count(*) FROM {s}.blobs"));
    }

    [Fact]
    public void A_blob_bigger_than_a_chunk_is_stored_in_chunks_and_read_back_in_order()
    {
        var store = CreateRun("chunks");
        byte[] content = new byte[(256 * 1024 * 3) + 17];
        new Random(7).NextBytes(content);

        var blob = store.Blobs.WriteArtifact("big.bin", 1, new MemoryStream(content));

        Assert.Equal(4L, Scalar(store, "SELECT count(*) FROM {s}.blob_chunks"));
        using var read = Reopen(store).Blobs.OpenRead(blob.Name);
        using var copy = new MemoryStream();
        read.CopyTo(copy, 1000); // reads smaller than a chunk
        Assert.Equal(content, copy.ToArray());
    }

    [Fact]
    public void The_log_rows_are_the_lines_journal_jsonl_would_hold()
    {
        var store = CreateRun("lines");
        string line = (string)Scalar(store, "SELECT convert_from(line, 'UTF8') FROM {s}.events WHERE run_id = 'lines' AND seq = 1")!;

        Assert.StartsWith("{\"seq\":1,\"ts\":\"", line, StringComparison.Ordinal);
        Assert.Contains("\"type\":\"run_created\"", line, StringComparison.Ordinal);
        Assert.Matches("\"crc\":\"[0-9a-f]{8}\"}$", line);
        Assert.True(Journal.JournalLineParser.HasValidChecksum(System.Text.Encoding.UTF8.GetBytes(line), out _));
    }

    internal override IRunStore CreateRun(string runId) =>
        _store.CreateRun(new RunCreateOptions { Name = "test", RunId = runId, Script = Runs.Bytes("# script") }, _dir.Combine("a", runId));

    internal override IRunStore Reopen(IRunStore store) => _other.OpenRun(store.RunId, _dir.Combine("b", store.RunId, Guid.NewGuid().ToString("N")));

    /// <summary>The database connection of the write is cut at the stage, as a network failure or a server restart would.</summary>
    internal override IDisposable FailNextBlobWrite(IRunStore store, string stage)
    {
        var pg = (PostgreSqlRunStore)store;
        bool fired = false;
        pg.FaultPoint = (point, connection) =>
        {
            if (!fired && point == "blob_" + stage)
            {
                fired = true;
                _cluster.Terminate(connection.ProcessID);
            }
        };
        return new Disarm(() => pg.FaultPoint = null);
    }

    internal override void Corrupt(IRunStore store, string name) =>
        Execute(store, $"UPDATE {{s}}.blob_chunks SET data = set_byte(data, 0, get_byte(data, 0) # 255) WHERE n = 0 AND content_id = (SELECT content_id FROM {{s}}.blobs WHERE run_id = '{store.RunId}' AND name = '{name}')");

    internal override void RequestStop(IRunStore store, string reason) =>
        ((PostgreSqlRunStore)store).RequestStop(new StopRequest { RequestedAt = DateTimeOffset.UtcNow, RequestedBy = "test", Reason = reason });

    internal override void AssertNoPartialBlobs(IRunStore store)
    {
        Assert.Equal(0L, Scalar(store, "SELECT count(*) FROM {s}.blob_chunks ch WHERE NOT EXISTS (SELECT 1 FROM {s}.blob_contents c WHERE c.id = ch.content_id)"));
        Assert.Equal(0L, Scalar(store, "SELECT count(*) FROM {s}.blob_contents c WHERE NOT EXISTS (SELECT 1 FROM {s}.blobs b WHERE b.content_id = c.id)"));
    }

    private object? Scalar(IRunStore store, string sql) =>
        PostgreSqlCluster.Scalar(_cluster.AppConnectionString, sql.Replace("{s}", ((PostgreSqlRunStore)store).S, StringComparison.Ordinal));

    private void Execute(IRunStore store, string sql) =>
        PostgreSqlCluster.Execute(_cluster.AppConnectionString, sql.Replace("{s}", ((PostgreSqlRunStore)store).S, StringComparison.Ordinal));

    private sealed class Disarm : IDisposable
    {
        private readonly Action _action;

        public Disarm(Action action) => _action = action;

        public void Dispose() => _action();
    }
}
