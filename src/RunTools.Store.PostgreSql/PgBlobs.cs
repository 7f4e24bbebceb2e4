using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Threading;
using Npgsql;
using RunTools.Core;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Storage;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Blobs content-addressed: the bytes are <c>blob_chunks</c> of one <c>blob_contents</c> row
/// (unique by SHA-256, so a content stored twice is kept once), and a run names them in
/// <c>blobs</c> (run_id, name) with the names the folder store would use (steps/&lt;step&gt;/output.&lt;format&gt;,
/// artifacts/&lt;name&gt;, attempt-N/ for later copies), so runs move between stores unchanged. A
/// write streams chunk by chunk inside one transaction, hashing as it goes: when it returns the
/// blob is committed under its name; when it fails nothing of it is visible.
/// </summary>
internal sealed class PgBlobs : IRunBlobs
{
    private readonly PostgreSqlRunStore _store;
    private readonly int _chunkSize;

    public PgBlobs(PostgreSqlRunStore store, int chunkSize)
    {
        _store = store;
        _chunkSize = chunkSize;
    }

    /// <summary>Local staging files of running steps (removed by RemoveLeftovers when abandoned).</summary>
    public string StagingFolder => Path.Combine(_store.LocalFolder, ".staging");

    /// <summary>Local copies of blobs for hosts that read by path, named by their SHA-256.</summary>
    public string CacheFolder => Path.Combine(_store.LocalFolder, ".blobs");

    public StoredBlob WriteStepOutput(string step, int attempt, string? format, Stream content)
    {
        string fileName = "output" + (IsSafeExtension(format) ? "." + format : ".bin");
        return Write(Candidates($"{RunFormat.StepsFolder}/{step}/", fileName, attempt), content);
    }

    public StoredBlob WriteArtifact(string name, int attempt, Stream content) =>
        Write(Candidates(RunFormat.ArtifactsFolder + "/", name, attempt), content);

    public string NewStagingFile(string step)
    {
        Directory.CreateDirectory(StagingFolder);
        return Path.Combine(StagingFolder, step + ".output" + DurableFile.TempMarker + Guid.NewGuid().ToString("N").Substring(0, 12));
    }

    public StoredBlob TakeStagingFile(string step, int attempt, string? format, string stagingFile)
    {
        return StagingFiles.Take(this, step, attempt, format, stagingFile);
    }

    public Stream OpenRead(string name)
    {
        var found = Find(name) ?? throw new FileNotFoundException($"No blob '{name}' in run '{_store.RunId}' ({_store.Location}).", name);
        return new PgBlobStream(_store, found.ContentId, found.Size);
    }

    public string LocalFile(string name)
    {
        var found = Find(name) ?? throw new FileNotFoundException($"No blob '{name}' in run '{_store.RunId}' ({_store.Location}).", name);
        string path = Path.Combine(CacheFolder, found.Sha256);
        if (File.Exists(path) && new FileInfo(path).Length == found.Size)
        {
            return path;
        }

        Directory.CreateDirectory(CacheFolder);
        using var source = new PgBlobStream(_store, found.ContentId, found.Size);
        DurableFile.WriteAtomicFrom(path, stream => source.CopyTo(stream, _chunkSize), () => $"Could not copy blob '{name}' to '{path}'");
        return path;
    }

    public bool Exists(string name) => Find(name) is not null;

    /// <summary>
    /// A stored copy of the run's config, parameters or script by its SHA-256 (what the state
    /// records), or null. Small files: read whole.
    /// </summary>
    public byte[]? ReadStoredCopy(string sha256)
    {
        using var source = OpenStoredCopy(sha256, out _);
        if (source is null)
        {
            return null;
        }

        using var copy = new MemoryStream();
        source.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A stored copy by its SHA-256, streamed chunk by chunk, or null.</summary>
    public Stream? OpenStoredCopy(string sha256, out long size)
    {
        var found = Find(StoredCopyName(sha256));
        size = found?.Size ?? 0;
        return found is null ? null : new PgBlobStream(_store, found.ContentId, found.Size);
    }

    /// <summary>The run's step outputs and artifacts (every name but the stored copies), in name order.</summary>
    public IReadOnlyList<StoredBlob> List() => _store.Db.Run("list the blobs of the run", idempotent: true, connection =>
    {
        using var command = _store.Db.Command(connection,
            $"SELECT b.name, c.size, c.sha256 FROM {_store.S}.blobs b JOIN {_store.S}.blob_contents c ON c.id = b.content_id WHERE b.run_id = @run AND b.name NOT LIKE @stored ORDER BY b.name COLLATE \"C\"");
        command.Parameters.AddWithValue("run", _store.RunId);
        command.Parameters.AddWithValue("stored", StoredCopyPrefix + "%");
        using var reader = command.ExecuteReader();
        var blobs = new List<StoredBlob>();
        while (reader.Read())
        {
            blobs.Add(new StoredBlob(reader.GetString(0), reader.GetInt64(1), Integrity.Hex((byte[])reader[2])));
        }

        return blobs;
    });

    /// <summary>Stores a copy by content under stored/&lt;sha256&gt;; idempotent (a second writer of the same copy finds it there).</summary>
    public void WriteStoredCopy(byte[] content)
    {
        string name = StoredCopyName(Integrity.Sha256Hex(content));
        if (Find(name) is null)
        {
            using var stream = new MemoryStream(content, writable: false);
            Write(new[] { name }, stream);
        }
    }

    /// <summary>Stored copies are named by content: every version a run ever recorded stays fetchable.</summary>
    internal static string StoredCopyName(string sha256) => StoredCopyPrefix + sha256.ToLowerInvariant();

    /// <summary>The names of stored copies start with this; no step output or artifact name does.</summary>
    internal const string StoredCopyPrefix = "stored/";

    /// <summary>Re-reads and re-hashes every stored blob from the database; references to files outside the store are checked where they are.</summary>
    public List<RunProblem> Verify(IReadOnlyList<RecordedFile> files, Action<long>? bytesDone = null, CancellationToken cancellation = default)
    {
        var problems = new List<RunProblem>();
        foreach (var file in files)
        {
            cancellation.ThrowIfCancellationRequested();
            var problem = Path.IsPathRooted(file.Path)
                ? Integrity.Check(_store.LocalFolder, file.Path, file.Size, file.Sha256, file.Step, file.Key)
                : Check(file);
            bytesDone?.Invoke(file.Size);
            if (problem is not null)
            {
                problems.Add(file.Vouches ? problem : problem.WithSeverity(RunProblemSeverity.Warning, file.Note));
            }
        }

        return problems;
    }

    private RunProblem? Check(RecordedFile file)
    {
        var found = Find(file.Path);
        if (found is null)
        {
            return new RunProblem(RunProblemKind.MissingFile, file.Path, $"{file.Size} bytes", "no blob", file.Step, file.Key, note: Integrity.WhatToDo(file.Step, file.Key));
        }

        using var sha = SHA256.Create();
        long size = 0;
        using (var stream = new PgBlobStream(_store, found.ContentId, long.MaxValue))
        {
            byte[] buffer = new byte[_chunkSize];
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                sha.TransformBlock(buffer, 0, read, null, 0);
                size += read;
            }
        }

        sha.TransformFinalBlock(Array.Empty<byte>(), 0, 0);
        string actual = Integrity.Hex(sha.Hash!);
        if (size != file.Size)
        {
            return new RunProblem(RunProblemKind.SizeMismatch, file.Path, $"{file.Size} bytes", $"{size} bytes", file.Step, file.Key, note: Integrity.WhatToDo(file.Step, file.Key));
        }

        return string.Equals(actual, file.Sha256, StringComparison.OrdinalIgnoreCase)
            ? null
            : new RunProblem(RunProblemKind.HashMismatch, file.Path, file.Sha256, actual, file.Step, file.Key, note: Integrity.WhatToDo(file.Step, file.Key));
    }

    private sealed record Found(long ContentId, long Size, string Sha256);

    private Found? Find(string name) => _store.Db.Run("find a blob of the run", idempotent: true, connection =>
    {
        using var command = _store.Db.Command(connection,
            $"SELECT c.id, c.size, c.sha256 FROM {_store.S}.blobs b JOIN {_store.S}.blob_contents c ON c.id = b.content_id WHERE b.run_id = @run AND b.name = @name");
        command.Parameters.AddWithValue("run", _store.RunId);
        command.Parameters.AddWithValue("name", name);
        using var reader = command.ExecuteReader();
        return reader.Read() ? new Found(reader.GetInt64(0), reader.GetInt64(1), Integrity.Hex((byte[])reader[2])) : null;
    });

    /// <summary>The names a blob may take, first free wins: never over an earlier blob (as the folder store).</summary>
    private static IEnumerable<string> Candidates(string prefix, string name, int attempt)
    {
        yield return prefix + name;
        for (int n = 1; ; n++)
        {
            yield return prefix + (n == 1 ? $"attempt-{attempt}" : $"attempt-{attempt}-{n}") + "/" + name;
        }
    }

    private static bool IsSafeExtension(string? format) =>
        format is { Length: > 0 and <= 16 } && format.All(c => (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));

    /// <summary>
    /// Not retried: the content stream cannot be read twice. A failure rolls the transaction back,
    /// so neither chunks nor a name are left; the caller gets WriteFailed and may write again.
    /// </summary>
    private StoredBlob Write(IEnumerable<string> candidates, Stream content)
    {
        try
        {
            return _store.Db.Run("store a blob of the run", idempotent: false, connection =>
            {
                using var transaction = connection.BeginTransaction();
                var (contentId, size, hash) = WriteContent(connection, transaction, content);
                if (Claim(connection, transaction, candidates, contentId) is not { } name)
                {
                    // Only a name fixed by its content runs out of candidates: that same content is stored under it already.
                    return new StoredBlob(candidates.First(), size, Integrity.Hex(hash));
                }

                _store.FaultPoint?.Invoke("blob_commit", connection);
                transaction.Commit();
                return new StoredBlob(name, size, Integrity.Hex(hash));
            });
        }
        catch (RunToolsException ex) when (ex.ErrorId != ErrorIds.WriteFailed)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError, ex.Message + " The file was not stored.", ex.Target, ex);
        }
        catch (IOException ex)
        {
            throw new RunToolsException(ErrorIds.WriteFailed, RunToolsErrorCategory.WriteError,
                $"Could not read the content to store in {_store.Location}: {ex.Message} The file was not stored.", _store.RunId, ex);
        }
    }

    /// <summary>
    /// Streams <paramref name="content"/> into chunks of a content row inside the caller's
    /// transaction, hashing as it goes (one chunk in memory). Content already stored (by any run)
    /// is kept once: these chunks are dropped and that row's id returned.
    /// </summary>
    internal (long ContentId, long Size, byte[] Sha256) WriteContent(NpgsqlConnection connection, NpgsqlTransaction transaction, Stream content)
    {
        string s = _store.S;
        long id = Scalar<long>(connection, transaction, $"SELECT nextval('{s}.blob_content_ids')");

        using var sha = SHA256.Create();
        byte[] buffer = new byte[_chunkSize];
        long size = 0;
        int chunk = 0;
        using (var insert = _store.Db.Command(connection, $"INSERT INTO {s}.blob_chunks (content_id, n, data) VALUES (@id, @n, @data)", transaction))
        {
            var n = insert.Parameters.AddWithValue("n", 0);
            var data = new NpgsqlParameter<ArraySegment<byte>>("data", NpgsqlTypes.NpgsqlDbType.Bytea);
            insert.Parameters.Add(data);
            insert.Parameters.AddWithValue("id", id);
            int filled;
            while ((filled = Fill(content, buffer)) > 0)
            {
                sha.TransformBlock(buffer, 0, filled, null, 0);
                n.Value = chunk++;
                data.TypedValue = new ArraySegment<byte>(buffer, 0, filled);
                insert.ExecuteNonQuery();
                size += filled;
                _store.FaultPoint?.Invoke("blob_write", connection);
            }
        }

        sha.TransformFinalBlock(Array.Empty<byte>(), 0, 0);
        byte[] hash = sha.Hash!;
        _store.FaultPoint?.Invoke("blob_sync", connection);

        using (var insertContent = _store.Db.Command(connection,
            $"INSERT INTO {s}.blob_contents (id, sha256, size) VALUES (@id, @sha, @size) ON CONFLICT (sha256) DO NOTHING RETURNING id", transaction))
        {
            insertContent.Parameters.AddWithValue("id", id);
            insertContent.Parameters.AddWithValue("sha", hash);
            insertContent.Parameters.AddWithValue("size", size);
            if (insertContent.ExecuteScalar() is long inserted)
            {
                return (inserted, size, hash);
            }
        }

        long contentId;
        using (var existing = _store.Db.Command(connection, $"SELECT id FROM {s}.blob_contents WHERE sha256 = @sha", transaction))
        {
            existing.Parameters.AddWithValue("sha", hash);
            contentId = (long)existing.ExecuteScalar()!;
        }

        using var drop = _store.Db.Command(connection, $"DELETE FROM {s}.blob_chunks WHERE content_id = @id", transaction);
        drop.Parameters.AddWithValue("id", id);
        drop.ExecuteNonQuery();
        return (contentId, size, hash);
    }

    /// <summary>The first free name, null when every candidate is taken; a name another writer holds uncommitted waits for that writer's outcome.</summary>
    private string? Claim(NpgsqlConnection connection, NpgsqlTransaction transaction, IEnumerable<string> candidates, long contentId)
    {
        using var claim = _store.Db.Command(connection,
            $"INSERT INTO {_store.S}.blobs (run_id, name, content_id) VALUES (@run, @name, @id) ON CONFLICT (run_id, name) DO NOTHING", transaction);
        claim.Parameters.AddWithValue("run", _store.RunId);
        var name = claim.Parameters.AddWithValue("name", string.Empty);
        claim.Parameters.AddWithValue("id", contentId);
        foreach (string candidate in candidates)
        {
            name.Value = candidate;
            if (claim.ExecuteNonQuery() == 1)
            {
                return candidate;
            }
        }

        return null;
    }

    private static T Scalar<T>(NpgsqlConnection connection, NpgsqlTransaction transaction, string sql)
    {
        using var command = new NpgsqlCommand(sql, connection, transaction);
        return (T)command.ExecuteScalar()!;
    }

    private static int Fill(Stream content, byte[] buffer)
    {
        int filled = 0;
        int read;
        while (filled < buffer.Length && (read = content.Read(buffer, filled, buffer.Length - filled)) > 0)
        {
            filled += read;
        }

        return filled;
    }
}
