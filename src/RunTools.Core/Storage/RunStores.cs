using System;

namespace RunTools.Core.Storage;

/// <summary>
/// The one place a run's store is chosen: a run held in a database opens its database store (an
/// assembly of its own, loaded only when used), any other run is a folder. The engine never knows
/// which it has.
/// </summary>
internal static class RunStores
{
    /// <param name="crashPoint">Test seam passed to the store (<see cref="Engine.AttemptOptions.CrashPoint"/>).</param>
    public static IRunStore Open(RunDirectory run, Action<string>? crashPoint = null) =>
        run.Database is { } database ? database.OpenStore(crashPoint) : new FileRunStore(run, crashPoint);

    /// <summary>The store of a worker joining the run's running attempt (Join-Run): a run in a database only.</summary>
    public static IRunStore OpenWorker(RunDirectory run) => run.Database?.OpenWorkerStore() ?? throw NotJoinable(run);

    /// <summary>JoinNotSupported: a run in a folder has one process at a time.</summary>
    public static RunToolsException NotJoinable(RunDirectory run) => new(ErrorIds.JoinNotSupported, RunToolsErrorCategory.InvalidOperation,
        $"Run '{run.RunId}' is in a folder ({run.Path}), where one process at a time works on a run. Workers on several processes or machines need the run in a database: start it with -Root postgresql://... (see docs/multi-machine.md).", run.RunId);
}
