using System;
using System.Management.Automation;
using System.Threading;
using System.Threading.Tasks;

namespace RunTools;

/// <summary>
/// Runs long Core work (hashing on all cores) off the pipeline thread, which meanwhile reports
/// progress: WriteProgress may only be called from the pipeline thread.
/// </summary>
internal static class ProgressRunner
{
    private static readonly TimeSpan s_interval = TimeSpan.FromMilliseconds(250);

    /// <param name="work">Gets a callback taking (done, total) in bytes, callable from any thread.</param>
    public static T Run<T>(Cmdlet cmdlet, int activityId, string activity, Func<Action<long, long>, T> work, CancellationToken cancellation)
    {
        long done = 0;
        long total = 0;
        var task = Task.Run(() => work((d, t) =>
        {
            Interlocked.Exchange(ref total, t);
            Interlocked.Exchange(ref done, d);
        }), cancellation);

        ProgressRecord? record = null;
        // WaitAny, not Wait: Wait throws an AggregateException when the work fails, and that must
        // reach the caller as the work's own exception (GetResult below), which it can turn into an error.
        while (Task.WaitAny(new Task[] { task }, s_interval) < 0)
        {
            long t = Interlocked.Read(ref total);
            long d = Interlocked.Read(ref done);
            record ??= new ProgressRecord(activityId, activity, "Hashing");
            record.StatusDescription = t > 0 ? $"{d / (1 << 20):N0} of {t / (1 << 20):N0} MiB hashed" : "Reading";
            record.PercentComplete = t > 0 ? (int)Math.Min(100, d * 100 / t) : -1;
            cmdlet.WriteProgress(record);
        }

        if (record is not null)
        {
            record.RecordType = ProgressRecordType.Completed;
            cmdlet.WriteProgress(record);
        }

        try
        {
            return task.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            throw new PipelineStoppedException();
        }
    }
}
