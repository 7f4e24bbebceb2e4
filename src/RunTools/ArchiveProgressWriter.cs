using System;
using System.Diagnostics;
using System.Globalization;
using System.Management.Automation;
using RunTools.Core.Archive;

namespace RunTools;

/// <summary>
/// Turns Core's archive progress (reported on the pipeline thread) into Write-Progress, throttled:
/// nothing for work that ends within half a second, then at most four updates a second.
/// </summary>
internal sealed class ArchiveProgressWriter
{
    private static readonly TimeSpan s_firstAfter = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan s_every = TimeSpan.FromMilliseconds(250);

    private readonly Cmdlet _cmdlet;
    private readonly string _activity;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private TimeSpan _last;
    private ProgressRecord? _record;

    public ArchiveProgressWriter(Cmdlet cmdlet, string activity)
    {
        _cmdlet = cmdlet;
        _activity = activity;
    }

    public void Report(ArchiveProgress progress)
    {
        var now = _clock.Elapsed;
        if (now < s_firstAfter || (_record is not null && now - _last < s_every))
        {
            return;
        }

        _last = now;
        string verb = progress.Phase == ArchivePhase.Compressing ? "Exporting" : "Importing";
        _record ??= new ProgressRecord(2, _activity, verb);
        _record.StatusDescription = string.Format(CultureInfo.InvariantCulture, "{0} run {1}: {2:N0} of {3:N0} files, {4:N1} of {5:N1} MB",
            verb, progress.RunId, progress.FilesDone, progress.FilesTotal, progress.BytesDone / 1048576.0, progress.BytesTotal / 1048576.0);
        _record.CurrentOperation = progress.CurrentFile ?? string.Empty;
        _record.PercentComplete = progress.BytesTotal > 0 ? (int)Math.Min(100, progress.BytesDone * 100 / progress.BytesTotal) : -1;
        _cmdlet.WriteProgress(_record);
    }

    /// <summary>Clears the bar, if one was shown.</summary>
    public void Complete()
    {
        if (_record is not null)
        {
            _record.RecordType = ProgressRecordType.Completed;
            _cmdlet.WriteProgress(_record);
            _record = null;
        }
    }
}
