using System;

namespace RunTools.Core.Storage;

/// <summary>
/// The one place a run's store is chosen. Today every run is a folder; a database store (its own
/// assembly, loaded only when used) is picked here too, so the engine never knows which it has.
/// </summary>
internal static class RunStores
{
    /// <param name="crashPoint">Test seam passed to the store (<see cref="Engine.AttemptOptions.CrashPoint"/>).</param>
    public static IRunStore Open(RunDirectory run, Action<string>? crashPoint = null) => new FileRunStore(run, crashPoint);
}
