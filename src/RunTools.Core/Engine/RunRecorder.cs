using System;
using System.Diagnostics;
using System.Text.Json;
using System.Threading;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core.Engine;

/// <summary>How soon a recorded event must be on disk.</summary>
internal enum Durability
{
    /// <summary>On disk before <see cref="RunRecorder.Record"/> returns: an intent that must precede a side effect, or an end.</summary>
    Durable,

    /// <summary>
    /// On disk with the next durable event, or at the latest <see cref="RunRecorder.DeferredFlushDelay"/>
    /// later: one flush then covers an item's completion and the next item's intent. A crash in
    /// between leaves that item in doubt (started, not completed), which is reported, never silent.
    /// </summary>
    Deferred,

    /// <summary>Made durable only by a later event or snapshot (facts a crash may lose without harm).</summary>
    Lazy,
}

/// <summary>
/// The only way an event reaches a run: append to the run log, fold into the live state and the
/// item ledger with the same rules a resume uses (<see cref="StateReducer"/>, <see cref="ItemLedger"/>),
/// make it durable as asked, and keep the snapshot fresh. Thread-safe: appends and folds are
/// serialized; waiting for durability is not, so concurrent units share flushes.
/// </summary>
internal sealed class RunRecorder : IDisposable
{
    /// <summary>
    /// The timer period for <see cref="Durability.Deferred"/> events: a deferred event is durable
    /// at most two periods (20 ms) after it was written, usually much sooner, with the next intent.
    /// </summary>
    public static readonly TimeSpan DeferredFlushDelay = TimeSpan.FromMilliseconds(10);

    private readonly object _gate = new();
    private readonly object _snapshotGate = new();
    private readonly IRunLog _log;
    private readonly Action<RunState, byte[]> _writeSnapshot;
    private readonly JournalLineParser _parser = new();
    private readonly StateReducer _reducer;
    private readonly Stopwatch _sinceSnapshot = Stopwatch.StartNew();
    private readonly TimeSpan _snapshotInterval;
    private readonly Timer _deferredFlush;
    private int _deferredArmed;
    private long _deferredTarget;
    private long _snapshotSequence = -1;
    private readonly Func<DateTimeOffset> _clock;
    private readonly Action<string>? _crashPoint;
    private RunToolsException? _fault;

    /// <param name="log">The run's log, positioned after its last valid event.</param>
    /// <param name="state">The state folded from that log so far (it becomes the live state).</param>
    /// <param name="ledger">The item ledger folded from that log so far.</param>
    /// <param name="writeSnapshot">Stores a serialized snapshot of the state (the store's run.json).</param>
    /// <param name="snapshotInterval">How often <see cref="MaybeSnapshot"/> rewrites the snapshot.</param>
    /// <param name="clock">The events' timestamps (tests fix it); the system clock when null.</param>
    /// <param name="crashPoint">Test seam (<see cref="AttemptOptions.CrashPoint"/>): "journal_flush" before each wait for a flush.</param>
    public RunRecorder(IRunLog log, RunState state, ItemLedger ledger, Action<RunState, byte[]> writeSnapshot, TimeSpan snapshotInterval, Func<DateTimeOffset>? clock = null, Action<string>? crashPoint = null)
    {
        _crashPoint = crashPoint;
        _clock = clock ?? (() => DateTimeOffset.UtcNow);
        _log = log;
        _reducer = new StateReducer(state);
        Ledger = ledger;
        _writeSnapshot = writeSnapshot;
        _snapshotInterval = snapshotInterval;
        _deferredFlush = new Timer(_ => FlushDeferred(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The live state. Read it under <see cref="SyncRoot"/> when units run concurrently.</summary>
    public RunState State => _reducer.State;

    /// <summary>The live item ledger. Read it under <see cref="SyncRoot"/> or its <see cref="ItemLedger.Gate"/> when units run concurrently.</summary>
    public ItemLedger Ledger { get; }

    /// <summary>Held while an event is appended and folded; hold it to decide on the state and record atomically.</summary>
    public object SyncRoot => _gate;

    /// <summary>Set once an append or flush failed: nothing more can be recorded in this attempt.</summary>
    public bool IsFaulted => Volatile.Read(ref _fault) is not null;

    /// <summary>What made the recorder fault, or null.</summary>
    public RunToolsException? Fault => Volatile.Read(ref _fault);

    public long LastSequence => _log.LastSequence;

    /// <summary>Appends <paramref name="runEvent"/>, folds it, and makes it durable as <paramref name="durability"/> says; returns its locator.</summary>
    public long Record(RunEvent runEvent, Durability durability = Durability.Durable)
    {
        var (sequence, locator) = Append(runEvent);
        switch (durability)
        {
            case Durability.Durable:
                MakeDurable(sequence);
                break;
            case Durability.Deferred:
                FlushSoon();
                break;
        }

        return locator;
    }

    /// <summary>
    /// Appends and folds <paramref name="runEvent"/> without waiting for the disk; the caller makes
    /// it durable with <see cref="WaitDurable"/> or <see cref="FlushSoon"/> after releasing any
    /// lock it holds (so that concurrent units share the flush). Callable under <see cref="SyncRoot"/>.
    /// </summary>
    public (long Sequence, long Locator) Append(RunEvent runEvent)
    {
        long sequence;
        long locator;
        lock (_gate)
        {
            ThrowIfFaulted();
            var now = _clock();
            try
            {
                (sequence, locator) = _log.Append(runEvent, now);
            }
            catch (RunToolsException ex)
            {
                Volatile.Write(ref _fault, ex);
                throw;
            }

            // Fold the event exactly as a reader would, so the snapshot always equals a rebuild.
            var line = _log.LastLine;
            if (_parser.TryParse(line, true, out var parsed, out _))
            {
                _reducer.Visit(in parsed, locator, line);
                lock (Ledger.Gate)
                {
                    Ledger.Visit(in parsed, locator, line);
                }
            }

            State.UpdatedAt = now;
            State.Journal = _log.Position;
        }

        return (sequence, locator);
    }

    /// <summary>
    /// Folds an event another process recorded (a joined worker follows the owner's log this way):
    /// the state and ledger learn it exactly as from a scan; nothing is appended.
    /// </summary>
    public void Fold(in ParsedLine line, long locator, ReadOnlySpan<byte> raw)
    {
        lock (_gate)
        {
            _reducer.Visit(in line, locator, raw);
            lock (Ledger.Gate)
            {
                Ledger.Visit(in line, locator, raw);
            }
        }
    }

    /// <summary>Returns once the event <paramref name="sequence"/> (and all before it) is durable. Never call it holding <see cref="SyncRoot"/>.</summary>
    public void WaitDurable(long sequence) => MakeDurable(sequence);

    /// <summary>Makes what was appended durable within two <see cref="DeferredFlushDelay"/> periods, unless a durable event does it first.</summary>
    public void FlushSoon()
    {
        if (Interlocked.Exchange(ref _deferredArmed, 1) == 0)
        {
            Arm(_log.LastSequence);
        }
    }

    /// <summary>Returns once every event recorded so far is durable.</summary>
    public void Flush() => MakeDurable(_log.LastSequence);

    /// <summary>Rewrites the snapshot when the interval has passed since the last one.</summary>
    public void MaybeSnapshot()
    {
        if (_sinceSnapshot.Elapsed >= _snapshotInterval)
        {
            Snapshot();
        }
    }

    /// <summary>Makes the log durable, then rewrites the snapshot (a snapshot never describes events a power loss could take back).</summary>
    public void Snapshot()
    {
        lock (_snapshotGate)
        {
            byte[] bytes;
            long sequence;
            lock (_gate)
            {
                sequence = _log.LastSequence;
                if (_snapshotSequence == sequence)
                {
                    return;
                }

                State.Journal = _log.Position;
                bytes = JsonSerializer.SerializeToUtf8Bytes(State, RunFormat.JsonOptions);
            }

            MakeDurable(sequence);
            _writeSnapshot(State, bytes);
            _snapshotSequence = sequence;
            _sinceSnapshot.Restart();
        }
    }

    public JournalEvent? ReadEvent(long locator) => _log.ReadEvent(locator);

    public void Dispose()
    {
        using var stopped = new ManualResetEvent(false);
        if (_deferredFlush.Dispose(stopped))
        {
            stopped.WaitOne(TimeSpan.FromSeconds(5));
        }

        _log.Dispose();
    }

    private void MakeDurable(long sequence)
    {
        _crashPoint?.Invoke("journal_flush");
        try
        {
            _log.MakeDurable(sequence);
        }
        catch (RunToolsException ex)
        {
            Volatile.Write(ref _fault, ex);
            throw;
        }
    }

    private void Arm(long target)
    {
        Interlocked.Exchange(ref _deferredTarget, target);
        try
        {
            _deferredFlush.Change(DeferredFlushDelay, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Disposed: the attempt's end already flushed everything it recorded.
        }
    }

    /// <summary>
    /// A period after arming: what was deferred then is flushed unless an intent's flush covered it
    /// meanwhile (units flowing one after another never pay a flush of their own). Events deferred
    /// since get one more period.
    /// </summary>
    private void FlushDeferred()
    {
        long target = Interlocked.Read(ref _deferredTarget);
        long durable = _log.DurableSequence;
        if (durable >= target && _log.LastSequence > durable)
        {
            Arm(_log.LastSequence);
            return;
        }

        Volatile.Write(ref _deferredArmed, 0);
        if (durable >= _log.LastSequence)
        {
            return;
        }

        try
        {
            MakeDurable(_log.LastSequence);
        }
        catch (RunToolsException)
        {
            // Recorded as the fault: the next unit's Record reports it.
        }
        catch (ObjectDisposedException)
        {
            // The attempt ended between arming and firing; its end flushed already.
        }
    }

    private void ThrowIfFaulted()
    {
        if (Volatile.Read(ref _fault) is { } fault)
        {
            throw fault;
        }
    }
}
