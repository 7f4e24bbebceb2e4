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
/// The worker runspaces of one attempt's parallel items: opened when an
/// <c>Invoke-RunItem -ThrottleLimit</c> call first needs them, reused by every later call of the
/// attempt (grown when a call needs more than are free), and closed when the attempt ends, however
/// it ends. Opening a runspace (the engine, the modules, the location) costs far more than an item,
/// so a script that calls Invoke-RunItem -ThrottleLimit in a loop pays it once.
/// </summary>
/// <remarks>
/// Between calls a worker's runspace state is reset, as ForEach-Object -Parallel resets a runspace
/// it reuses: variables (the items' own, the call's <c>$using:</c> values) do not carry over, while
/// the modules imported in it stay imported, with their state, for the attempt.
/// </remarks>
internal sealed class ItemWorkerPool : IDisposable
{
    private static readonly ConditionalWeakTable<RunContext, ItemWorkerPool> s_pools = new();

    private readonly RunContext _context;
    private readonly object _gate = new();
    private readonly List<ItemWorker> _workers = new();
    private readonly Stack<ItemWorker> _idle = new();
    private bool _closed;

    private ItemWorkerPool(RunContext context) => _context = context;

    /// <summary>The pool of the attempt <paramref name="context"/> belongs to, made on first use.</summary>
    public static ItemWorkerPool For(RunContext context)
    {
        lock (s_pools)
        {
            return s_pools.GetValue(context.Root, root => new ItemWorkerPool(root));
        }
    }

    /// <summary>The attempt has ended: closes its workers' runspaces, if it opened any.</summary>
    public static void Close(RunContext context)
    {
        ItemWorkerPool? pool;
        lock (s_pools)
        {
            if (s_pools.TryGetValue(context.Root, out pool))
            {
                s_pools.Remove(context.Root);
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

            var leased = new List<ItemWorker>(count);
            while (leased.Count < count && _idle.Count > 0)
            {
                var worker = _idle.Pop();
                if (!worker.Broken)
                {
                    leased.Add(worker);
                }
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

        foreach (var worker in workers)
        {
            worker.Close();
        }

        foreach (var worker in workers)
        {
            worker.Join(TimeSpan.FromSeconds(30));
        }
    }
}
