using System;
using System.Collections.Generic;
using System.Threading;

namespace RunTools;

/// <summary>
/// The hand-off of one Invoke-RunItem -ThrottleLimit call between its pipeline thread and its
/// workers: claimed items go to the workers through a queue of at most N, finished ones come back.
/// Every wait blocks at once and is woken only by what it waits for (a worker by an item or the
/// end, the pipeline thread by a result or by room in the queue): on a small machine, waiters that
/// spin or poll take the CPU the working threads need, which BlockingCollection's do.
/// </summary>
internal sealed class ItemHandOff<TJob, TResult> : IDisposable
{
    private readonly object _gate = new();
    private readonly Queue<TJob> _jobs = new();
    private readonly Queue<TResult> _results = new();
    private readonly int _capacity;

    // No spinning before blocking (spinCount 0): the pipeline thread waits for whole items.
    private readonly ManualResetEventSlim _pipelineWake = new(false, 0);

    // Guarded by _gate.
    private int _waitingWorkers;
    private bool _pipelineWaiting;
    private bool _completed;

    public ItemHandOff(int capacity) => _capacity = capacity;

    /// <summary>
    /// Pipeline thread: queues <paramref name="job"/> if there is room, else waits for room or for
    /// results, moving any finished results to <paramref name="finished"/> first (the caller writes
    /// them, then calls again). True once the job is queued.
    /// </summary>
    public bool AddOrTakeResults(TJob job, List<TResult> finished, CancellationToken cancel)
    {
        while (true)
        {
            lock (_gate)
            {
                if (_results.Count > 0)
                {
                    MoveResults(finished);
                    return false;
                }

                if (_jobs.Count < _capacity)
                {
                    _jobs.Enqueue(job);
                    if (_waitingWorkers > 0)
                    {
                        Monitor.Pulse(_gate);
                    }

                    return true;
                }

                _pipelineWaiting = true;
                _pipelineWake.Reset();
            }

            _pipelineWake.Wait(cancel);
        }
    }

    /// <summary>Pipeline thread: moves finished results to <paramref name="finished"/>; with <paramref name="wait"/>, waits for at least one first.</summary>
    public void TakeResults(List<TResult> finished, bool wait)
    {
        while (true)
        {
            lock (_gate)
            {
                if (_results.Count > 0 || !wait)
                {
                    MoveResults(finished);
                    return;
                }

                _pipelineWaiting = true;
                _pipelineWake.Reset();
            }

            _pipelineWake.Wait();
        }
    }

    /// <summary>Worker: the next queued item; false once the call has no more (<see cref="Complete"/>) and the queue is empty.</summary>
    public bool TryTake(out TJob job)
    {
        lock (_gate)
        {
            while (_jobs.Count == 0)
            {
                if (_completed)
                {
                    job = default!;
                    return false;
                }

                _waitingWorkers++;
                Monitor.Wait(_gate);
                _waitingWorkers--;
            }

            job = _jobs.Dequeue();
            WakePipeline(); // there is room now
            return true;
        }
    }

    /// <summary>Worker: a finished (or abandoned) item for the pipeline thread to write.</summary>
    public void AddResult(TResult result)
    {
        lock (_gate)
        {
            _results.Enqueue(result);
            WakePipeline();
        }
    }

    /// <summary>No more items: workers take what is queued, then stop taking.</summary>
    public void Complete()
    {
        lock (_gate)
        {
            _completed = true;
            Monitor.PulseAll(_gate);
        }
    }

    public void Dispose() => _pipelineWake.Dispose();

    private void MoveResults(List<TResult> finished)
    {
        while (_results.Count > 0)
        {
            finished.Add(_results.Dequeue());
        }
    }

    private void WakePipeline()
    {
        if (_pipelineWaiting)
        {
            _pipelineWaiting = false;
            _pipelineWake.Set();
        }
    }
}
