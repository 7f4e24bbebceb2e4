using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using System.Management.Automation.Host;
using System.Management.Automation.Runspaces;
using System.Runtime.CompilerServices;
using System.Threading;
using RunTools.Core;
using RunTools.Core.Engine;

namespace RunTools;

/// <summary>
/// The worker runspaces of one attempt's parallel items: taken when an
/// <c>Invoke-RunItem -ThrottleLimit</c> call first needs them (from the workers an earlier attempt
/// of this process left in <see cref="IdleItemWorkers"/>, else opened), reused by every later call
/// of the attempt (grown when a call needs more than are free), and let go of when the attempt
/// ends, however it ends: kept for the next attempt when they are idle and whole, closed when not
/// (stopped, cut off mid-item, still busy). Opening a runspace (the engine, the modules, the
/// location) costs far more than an item, so a script, or a process, that runs items in a loop pays it once.
/// </summary>
/// <remarks>
/// Between calls a worker's runspace state is reset, as ForEach-Object -Parallel resets a runspace
/// it reuses: variables (the items' own, the call's <c>$using:</c> values) do not carry over, while
/// the modules imported in it stay imported, with their state, as they do in the run script's own runspace.
/// </remarks>
internal sealed class ItemWorkerPool : IDisposable
{
    private static readonly ConditionalWeakTable<RunContext, ItemWorkerPool> s_pools = new();

    private readonly RunContext _context;
    private readonly object _gate = new();
    private readonly List<ItemWorker> _workers = new();
    private readonly Stack<ItemWorker> _idle = new();
    private PSHost? _host;
    private bool _closed;

    private ItemWorkerPool(RunContext context) => _context = context;

    /// <summary>The pool of the attempt <paramref name="context"/> belongs to, made on first use.</summary>
    public static ItemWorkerPool For(RunContext context)
    {
        lock (s_pools)
        {
            return s_pools.GetValue(context.AttemptContext, root => new ItemWorkerPool(root));
        }
    }

    /// <summary>The attempt has ended: closes its workers' runspaces, if it opened any.</summary>
    public static void Close(RunContext context)
    {
        ItemWorkerPool? pool;
        lock (s_pools)
        {
            if (s_pools.TryGetValue(context.AttemptContext, out pool))
            {
                s_pools.Remove(context.AttemptContext);
            }
        }

        pool?.Dispose();
    }

    /// <summary>
    /// <paramref name="count"/> workers for one call, none of them serving another: free ones
    /// first, new ones (opening on their own threads) for the rest.
    /// </summary>
    public IReadOnlyList<ItemWorker> Lease(int count, PSHost host, IReadOnlyList<string> modules)
    {
        lock (_gate)
        {
            if (_closed)
            {
                throw new ObjectDisposedException(nameof(ItemWorkerPool), "The attempt these workers belonged to has ended.");
            }

            _host = host;
            var leased = new List<ItemWorker>(count);
            while (leased.Count < count && _idle.Count > 0)
            {
                var worker = _idle.Pop();
                if (!worker.Broken)
                {
                    leased.Add(worker);
                }
            }

            while (leased.Count < count && IdleItemWorkers.Take(host, modules) is { } kept)
            {
                kept.Attach(this, _context.ForParallelItems());
                _workers.Add(kept);
                leased.Add(kept);
            }

            while (leased.Count < count)
            {
                var worker = new ItemWorker(this, host, modules, _context.ForParallelItems());
                _workers.Add(worker);
                leased.Add(worker);
            }

            return leased;
        }
    }

    /// <summary>A worker done with its call is free for the next one (a worker that could not open is not).</summary>
    internal void Return(ItemWorker worker)
    {
        lock (_gate)
        {
            if (!_closed && !worker.Broken)
            {
                _idle.Push(worker);
            }
        }
    }

    public void Dispose()
    {
        List<ItemWorker> workers;
        lock (_gate)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            _idle.Clear();
            workers = _workers.ToList();
        }

        // A job's host ends with its job: its workers could serve no other attempt.
        bool keep = _host is not null && !RunJob.IsJobHost(_host);
        var closing = new List<ItemWorker>();
        foreach (var worker in workers)
        {
            if (keep && worker.Detach())
            {
                IdleItemWorkers.Park(worker);
                continue;
            }

            worker.Close();
            closing.Add(worker);
        }

        foreach (var worker in closing)
        {
            worker.Join(TimeSpan.FromSeconds(30));
        }
    }
}
