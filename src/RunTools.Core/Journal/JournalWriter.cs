using System;
using System.Globalization;
using System.IO;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Infrastructure;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Journal;

/// <summary>
/// The file store's run log: appends events to journal.jsonl. Each line is one JSON object whose
/// last member is <c>"crc"</c>: CRC-32 of the line with that member removed. A failed append is
/// cut back off, so the journal never keeps half a line. Durability is group-committed: an fsync
/// covers every line written before it started, and callers waiting meanwhile share the next one.
/// </summary>
internal sealed class JournalWriter : IRunLog
{
    internal const string CrcMember = ",\"crc\":\"";
    internal const int CrcSuffixLength = 18; // ,"crc":"xxxxxxxx"}

    private readonly FileStream _stream;
    private readonly JournalLineFormatter _formatter = new();
    private readonly object _writeLock = new();
    private readonly object _readLock = new();
    private readonly JournalLineParser _readParser = new();
    private byte[] _readBuffer = new byte[4096];
    private FileStream? _reader;
    private readonly GroupCommit _commit;
    private long _length;
    private int _lastLineLength;
    private long _lastSequence;

    // Written by the flush in progress only (GroupCommit runs one at a time).
    private long _flushTargetLength;
    private long _durableLength;
    private RunToolsException? _flushFailure;

    public JournalWriter(string path, long validLength, long lastSequence)
    {
        Path = path;
        try
        {
            _stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read | FileShare.Delete, 1, FileOptions.None);
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            throw DurableFile.Failed($"Could not open the journal '{path}' for appending", path, ex, "Nothing was recorded.");
        }

        if (_stream.Length != validLength)
        {
            try
            {
                _stream.SetLength(validLength);
                DurableFile.Sync(_stream, path);
            }
            catch (IOException ex)
            {
                _stream.Dispose();
                throw DurableFile.Failed($"Could not cut the unfinished last line off the journal '{path}'", path, ex, "Nothing was recorded.");
            }
        }

        _stream.Position = validLength;
        _length = validLength;
        _lastSequence = lastSequence;
        _durableLength = validLength;
        _commit = new GroupCommit(lastSequence, CaptureFlushTarget, FlushTo);
    }

    public string Path { get; }

    public long LastSequence => Volatile.Read(ref _lastSequence);

    public long Length => Volatile.Read(ref _length);

    public long DurableSequence => _commit.Durable;

    /// <summary>How many fsyncs group commit has run: tests assert that concurrent commits share them.</summary>
    internal int Flushes => _commit.Flushes;

    public JournalPosition Position => new() { Sequence = LastSequence, Length = Length };

    /// <summary>The line the last Append wrote, without its newline.</summary>
    public ReadOnlySpan<byte> LastLine => new(_formatter.Buffer, 0, _lastLineLength);

    public static string FormatTimestamp(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>Appends one event and makes it durable; returns its sequence number and the offset of its line.</summary>
    public (long Sequence, long Locator) AppendDurable(RunEvent runEvent, DateTimeOffset timestamp)
    {
        var appended = Append(runEvent, timestamp);
        MakeDurable(appended.Sequence);
        return appended;
    }

    /// <summary>Appends one event (not yet durable); returns its sequence number and the offset of its line.</summary>
    public (long Sequence, long Locator) Append(RunEvent runEvent, DateTimeOffset timestamp)
    {
        lock (_writeLock)
        {
            return AppendLocked(runEvent.Type, timestamp, runEvent.Members);
        }
    }

    /// <summary>
    /// Appends a line of any type and members: only for tests and benchmarks that forge or
    /// synthesize journals. The engine records through <see cref="RunEvent"/>, the schema's home.
    /// </summary>
    internal (long Sequence, long Offset) Append(string type, DateTimeOffset timestamp, Action<Utf8JsonWriter>? payload, bool durable = true)
    {
        (long Sequence, long Offset) appended;
        lock (_writeLock)
        {
            appended = AppendLocked(type, timestamp, payload);
        }

        if (durable)
        {
            MakeDurable(appended.Sequence);
        }

        return appended;
    }

    private (long Sequence, long Offset) AppendLocked(string type, DateTimeOffset timestamp, Action<Utf8JsonWriter>? payload)
    {
        ThrowIfFlushFailed();
        long sequence = _lastSequence + 1;
        _formatter.Format(sequence, timestamp, type, payload);
        byte[] line = _formatter.Buffer;
        int at = _formatter.Length;

        long offset = _length;
        try
        {
            int injected = FaultPoints.Check(DurableOp.Write, Path);
            if (injected != 0)
            {
                // As a full disk does: part of the line lands, then the write fails.
                _stream.Write(line, 0, at / 2);
                throw NativeMethods.ErrnoException(injected, $"write to '{Path}'", injected: true);
            }

            _stream.Write(line, 0, at);
        }
        catch (IOException ex)
        {
            CutBack(offset);
            throw DurableFile.Failed($"Could not append a '{type}' event to the journal '{Path}'", Path, ex,
                "The event was not recorded, so its unit does not count as done.");
        }

        _lastLineLength = at - 1;
        Volatile.Write(ref _length, offset + at);
        Volatile.Write(ref _lastSequence, sequence);
        return (sequence, offset);
    }

    /// <summary>Makes every append so far durable; WriteFailed when the disk refuses.</summary>
    public void Flush() => MakeDurable(LastSequence);

    public void MakeDurable(long sequence)
    {
        ThrowIfFlushFailed();
        _commit.Commit(sequence);
    }

    /// <summary>The last line written so far, which the flush about to start covers (only the flush leader calls it).</summary>
    private long CaptureFlushTarget()
    {
        lock (_writeLock)
        {
            ThrowIfFlushFailed();
            _flushTargetLength = _length;
            return _lastSequence;
        }
    }

    /// <summary>
    /// One fsync: every line counted by <see cref="CaptureFlushTarget"/> was fully written before it
    /// starts, so it covers them. The write lock is not held: appends go on during the flush (fsync
    /// on the descriptor is safe beside write()).
    /// </summary>
    private void FlushTo(long targetSequence)
    {
        try
        {
            DurableFile.Sync(_stream, Path);
            Volatile.Write(ref _durableLength, _flushTargetLength);
        }
        catch (IOException ex)
        {
            var failure = DurableFile.Failed($"Could not flush the journal '{Path}' to disk", Path, ex,
                "Events since the last good flush may be lost in a power loss, so none of them counts as done.");

            // What was not durable is cut back off (best effort): after a failed fsync the kernel
            // may have dropped those pages, so the journal must not claim them later; and nothing
            // more is appended, so no later event can count as done either.
            lock (_writeLock)
            {
                Volatile.Write(ref _flushFailure, failure);
                long keep = Volatile.Read(ref _durableLength);
                CutBack(keep);
                _length = keep;
            }

            throw failure;
        }
    }

    /// <summary>Reads an event back through one kept-open handle: a resume replays many item outputs.</summary>
    public JournalEvent? ReadEvent(long locator)
    {
        lock (_readLock)
        {
            _reader ??= DurableFile.OpenRead(Path, 1);
            int filled = 0;
            while (true)
            {
                _reader.Position = locator + filled;
                int read = _reader.Read(_readBuffer, filled, _readBuffer.Length - filled);
                if (read == 0)
                {
                    return null;
                }

                int newline = Array.IndexOf(_readBuffer, (byte)'\n', filled, read);
                filled += read;
                if (newline >= 0)
                {
                    return JournalScanner.ParseEvent(_readParser, new ReadOnlySpan<byte>(_readBuffer, 0, newline), locator);
                }

                if (filled == _readBuffer.Length)
                {
                    Array.Resize(ref _readBuffer, _readBuffer.Length * 2);
                }
            }
        }
    }

    private void ThrowIfFlushFailed()
    {
        if (Volatile.Read(ref _flushFailure) is { } failure)
        {
            throw failure;
        }
    }

    public void Dispose()
    {
        _formatter.Dispose();
        _stream.Dispose();
        lock (_readLock)
        {
            _reader?.Dispose();
        }
    }

    private void CutBack(long length)
    {
        try
        {
            _stream.SetLength(length);
            _stream.Position = length;
            DurableFile.Sync(_stream, Path);
        }
        catch (IOException)
        {
            // Still torn: readers ignore a bad tail and the next owner repairs it.
        }
    }
}
