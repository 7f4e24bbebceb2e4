using System;
using System.IO;
using System.Security.Cryptography;
using RunTools.Core.Engine;
using static RunTools.Core.Archive.ArchiveErrors;

namespace RunTools.Core.Archive;

/// <summary>
/// An archive entry's bytes as its manifest record vouches for them: never more than the recorded
/// size + 1 bytes are decompressed (a zip bomb cannot fill a disk or a database), and when the end
/// is read the size (ArchiveSizeMismatch) and SHA-256 (ArchiveHashMismatch) must be the recorded
/// ones. A consumer must read to the end, where the check is; what it wrote before a failure is its to undo.
/// </summary>
internal sealed class VerifiedEntryStream : Stream
{
    private readonly string _archive;
    private readonly ArchiveFileRecord _record;
    private readonly Stream _inner;
    private readonly ArchiveProgressReporter? _progress;
    private readonly SHA256 _sha = SHA256.Create();
    private long _total;
    private bool _verified;

    public VerifiedEntryStream(string archive, ArchiveFileRecord record, Stream inner, ArchiveProgressReporter? progress)
    {
        _archive = archive;
        _record = record;
        _inner = inner;
        _progress = progress;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _record.Size;

    public override long Position
    {
        get => _total;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_verified || count == 0)
        {
            return 0;
        }

        int want = (int)Math.Min(count, _record.Size + 1 - _total);
        int n;
        try
        {
            n = _inner.Read(buffer, offset, want);
        }
        catch (InvalidDataException ex)
        {
            throw Corrupt(_archive, $"entry '{_record.Path}' cannot be decompressed: {ex.Message}", ex);
        }
        catch (NotSupportedException ex)
        {
            throw Corrupt(_archive, $"entry '{_record.Path}' uses a compression method this RunTools cannot read: {ex.Message}", ex);
        }

        if (n == 0)
        {
            Verify();
            return 0;
        }

        _total += n;
        if (_total > _record.Size)
        {
            throw SizeMismatch(_archive, _record.Path, _record.Size, "it decompresses to more");
        }

        _sha.TransformBlock(buffer, offset, n, null, 0);
        _progress?.Add(n);
        return n;
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            _sha.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Verify()
    {
        if (_total != _record.Size)
        {
            throw SizeMismatch(_archive, _record.Path, _record.Size, $"it decompresses to {_total} bytes");
        }

        _sha.TransformFinalBlock(Array.Empty<byte>(), 0, 0);
        string actual = Integrity.Hex(_sha.Hash!);
        if (!string.Equals(actual, _record.Sha256, StringComparison.OrdinalIgnoreCase))
        {
            throw new RunToolsException(ErrorIds.ArchiveHashMismatch, RunToolsErrorCategory.InvalidData,
                $"Entry '{_record.Path}' of archive '{_archive}' has SHA-256 {actual}, but the manifest says {_record.Sha256}: its bytes were altered or damaged. Nothing was imported; use another copy of the archive or export the run again.", _archive);
        }

        _verified = true;
    }
}
