using System;
using System.Collections.Generic;
using System.IO;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// A run's event rows read as the journal.jsonl they stand for: each row's line and a newline, in
/// seq order, through a last seq fixed when opened. A page of rows per short query, so only one
/// page is in memory and no connection is held between pages.
/// </summary>
internal sealed class PgJournalStream : Stream
{
    private const int PageSize = 2000;
    private static readonly byte[] s_newline = { (byte)'\n' };

    private readonly PostgreSqlRunStore _store;
    private readonly long _lastSeq;
    private readonly Queue<byte[]> _page = new();
    private long _after;
    private byte[] _current = Array.Empty<byte>();
    private int _offset;
    private long _position;

    public PgJournalStream(PostgreSqlRunStore store, long lastSeq)
    {
        _store = store;
        _lastSeq = lastSeq;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        int done = 0;
        while (done < count)
        {
            if (_offset == _current.Length && !Next())
            {
                break;
            }

            int n = Math.Min(count - done, _current.Length - _offset);
            Buffer.BlockCopy(_current, _offset, buffer, offset + done, n);
            _offset += n;
            done += n;
        }

        _position += done;
        return done;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>The next line, then its newline; a new page when this one is used up.</summary>
    private bool Next()
    {
        if (_current.Length > 0 && !ReferenceEquals(_current, s_newline))
        {
            _current = s_newline;
            _offset = 0;
            return true;
        }

        if (_page.Count == 0 && !ReadPage())
        {
            return false;
        }

        _current = _page.Dequeue();
        _offset = 0;
        return true;
    }

    private bool ReadPage()
    {
        if (_after >= _lastSeq)
        {
            return false;
        }

        _store.Db.Run("read the run's events", idempotent: true, connection =>
        {
            using var command = _store.Db.Command(connection,
                $"SELECT seq, line FROM {_store.S}.events WHERE run_id = @run AND seq > @after AND seq <= @last ORDER BY seq LIMIT {PageSize}");
            command.Parameters.AddWithValue("run", _store.RunId);
            command.Parameters.AddWithValue("after", _after);
            command.Parameters.AddWithValue("last", _lastSeq);
            using var reader = command.ExecuteReader();
            _page.Clear(); // a retry after a dropped connection starts the page again
            long after = _after;
            while (reader.Read())
            {
                after = reader.GetInt64(0);
                _page.Enqueue((byte[])reader[1]);
            }

            _after = _page.Count == 0 ? _lastSeq : after;
        });

        return _page.Count > 0;
    }
}
