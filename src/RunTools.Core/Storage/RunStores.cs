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
}
