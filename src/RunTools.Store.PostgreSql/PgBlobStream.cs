using System;
using System.IO;

namespace RunTools.Store.PostgreSql;

/// <summary>
/// Reads a stored blob chunk by chunk, one short query per chunk: only one chunk is in memory,
/// and no connection is held between reads (a reader that pauses holds nothing in the database).
/// Chunks never change once committed, so reading them in separate statements is consistent.
/// </summary>
internal sealed class PgBlobStream : Stream
{
    private readonly PostgreSqlRunStore _store;
    private readonly long _contentId;
    private readonly long _length;
    private byte[] _chunk = Array.Empty<byte>();
    private int _offset;
    private int _next;
    private long _position;
    private bool _end;

    /// <param name="length">The recorded size (<see cref="long.MaxValue"/> when the caller checks the size itself).</param>
    public PgBlobStream(PostgreSqlRunStore store, long contentId, long length)
    {
        _store = store;
        _contentId = contentId;
        _length = length;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _length != long.MaxValue ? _length : throw new NotSupportedException();

    public override long Position
    {
        get => _position;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_offset == _chunk.Length && !NextChunk())
        {
            return 0;
        }

        int n = Math.Min(count, _chunk.Length - _offset);
        Buffer.BlockCopy(_chunk, _offset, buffer, offset, n);
        _offset += n;
        _position += n;
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    private bool NextChunk()
    {
        while (!_end)
        {
            byte[]? chunk = _store.Db.Run("read a blob of the run", idempotent: true, connection =>
            {
                using var command = _store.Db.Command(connection, $"SELECT data FROM {_store.S}.blob_chunks WHERE content_id = @id AND n = @n");
                command.Parameters.AddWithValue("id", _contentId);
                command.Parameters.AddWithValue("n", _next);
                return command.ExecuteScalar() as byte[];
            });
            if (chunk is null)
            {
                _end = true;
                return false;
            }

            _next++;
            _chunk = chunk;
            _offset = 0;
            if (chunk.Length > 0)
            {
                return true;
            }
        }

        return false;
    }
}
