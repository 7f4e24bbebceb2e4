using System;
using System.Threading;

namespace RunTools.Core.Archive;

/// <summary>
/// Progress of one export or import: a report as each file starts, then every 4 MiB, and one at the
/// end. Cancellation is checked before each report, so a large file stops promptly too.
/// </summary>
internal sealed class ArchiveProgressReporter
{
    private const long EveryBytes = 4L << 20;

    private readonly ArchivePhase _phase;
    private readonly string _runId;
    private readonly int _filesTotal;
    private readonly long _bytesTotal;
    private readonly Action<ArchiveProgress>? _progress;
    private readonly CancellationToken _cancel;
    private int _file;
    private string? _path;
    private long _bytesDone;
    private long _nextReport = EveryBytes;

    public ArchiveProgressReporter(ArchivePhase phase, string runId, int filesTotal, long bytesTotal, Action<ArchiveProgress>? progress, CancellationToken cancel)
    {
        _phase = phase;
        _runId = runId;
        _filesTotal = filesTotal;
        _bytesTotal = bytesTotal;
        _progress = progress;
        _cancel = cancel;
    }

    public void StartFile(int index, string path)
    {
        _cancel.ThrowIfCancellationRequested();
        _file = index;
        _path = path;
        Report();
    }

    public void Add(int bytes)
    {
        _bytesDone += bytes;
        if (_bytesDone >= _nextReport)
        {
            _cancel.ThrowIfCancellationRequested();
            Report();
            _nextReport = _bytesDone + EveryBytes;
        }
    }

    public void Finish() => _progress?.Invoke(new ArchiveProgress(_phase, _runId, _filesTotal, _filesTotal, _bytesTotal, _bytesTotal, null));

    private void Report() => _progress?.Invoke(new ArchiveProgress(_phase, _runId, _file, _filesTotal, _bytesDone, _bytesTotal, _path));
}
