using System;
using System.Threading;

namespace RunTools.Core.Storage;

/// <summary>
/// Group commit for a run log: one flush at a time makes every append made before it started
/// durable, and the callers that arrive while it runs share the next one. A commit therefore waits
/// at most for the flush in progress plus one of its own. Waiters block on an event (no spinning:
/// on a small machine spinning waiters take the CPU the flushing and working threads need).
/// </summary>
/// <remarks>
/// A failed flush fails every commit it covered (the sequence numbers up to the one it captured)
/// and no later one: a commit for a later sequence starts a flush of its own. Whether a log accepts
/// anything after a failed flush is the log's own rule (its flush can keep failing).
/// </remarks>
internal sealed class GroupCommit
{
    private readonly Func<long> _capture;
    private readonly Action<long> _flush;
    private readonly object _gate = new();
    private long _durable;

    // Guarded by _gate: the flush running now, null when none is.
    private Round? _running;

    /// <param name="durable">The sequence number already durable.</param>
    /// <param name="capture">The last sequence appended so far: what the flush about to start covers.</param>
    /// <param name="flush">
    /// Makes everything up to the captured sequence durable; throws when it cannot (the exception
    /// fails the commits it covered). The pair never runs twice at once.
    /// </param>
    public GroupCommit(long durable, Func<long> capture, Action<long> flush)
    {
        _durable = durable;
        _capture = capture;
        _flush = flush;
    }

    /// <summary>The highest sequence number known durable.</summary>
    public long Durable => Volatile.Read(ref _durable);

    /// <summary>How many flushes ran (failed ones included): tests assert that committers share them.</summary>
    public int Flushes { get; private set; }

    /// <summary>Returns once <paramref name="sequence"/> is durable; throws the flush's error when the flush covering it failed.</summary>
    public void Commit(long sequence)
    {
        while (true)
        {
            if (Volatile.Read(ref _durable) >= sequence)
            {
                return;
            }

            Round? running;
            Round? mine = null;
            lock (_gate)
            {
                if (_durable >= sequence)
                {
                    return;
                }

                running = _running;
                if (running is null)
                {
                    mine = _running = new Round();
                    Flushes++;
                }
            }

            if (mine is not null)
            {
                Lead(mine);
                if (mine.Failure is not null && sequence <= mine.Target)
                {
                    throw mine.Failure;
                }

                continue;
            }

            running!.Done.Wait();
            if (running.Failure is not null && sequence <= running.Target)
            {
                // Appended before that flush started: it was part of the group that failed.
                throw running.Failure;
            }
        }
    }

    private void Lead(Round round)
    {
        try
        {
            // Everything appended until now; appends made while the flush runs wait for the next one.
            round.Target = long.MaxValue;
            long target = round.Target = _capture();
            _flush(target);
            lock (_gate)
            {
                if (target > _durable)
                {
                    Volatile.Write(ref _durable, target);
                }
            }
        }
        catch (Exception ex)
        {
            round.Failure = ex;
        }
        finally
        {
            lock (_gate)
            {
                _running = null;
            }

            round.Done.Set();
        }
    }

    /// <summary>One flush: what it covered, how it ended, and the event its waiters block on.</summary>
    private sealed class Round
    {
        // No spinning before blocking: the wait is an fsync or a database round trip.
        public ManualResetEventSlim Done { get; } = new(false, 0);

        public long Target { get; set; }

        public Exception? Failure { get; set; }
    }
}
