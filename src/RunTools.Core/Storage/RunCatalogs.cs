using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.InteropServices;
using RunTools.Core.State;

namespace RunTools.Core.Storage;

/// <summary>What a listing asks a store for. Patterns are PowerShell wildcards; a store may push them into its query, and the caller still checks each run.</summary>
public sealed class RunFilter
{
    public IReadOnlyList<string> RunIdPatterns { get; set; } = Array.Empty<string>();

    public IReadOnlyList<string> NamePatterns { get; set; } = Array.Empty<string>();

    /// <summary>Statuses as a reader sees them (Interrupted and Stopping are derived); empty: all.</summary>
    public IReadOnlyList<RunStatus> Statuses { get; set; } = Array.Empty<RunStatus>();
}

/// <summary>A run found in a store that is not a folder: its state (status derived), or why it could not be read.</summary>
public sealed class StoredRunListing
{
    internal StoredRunListing(RunDirectory run, RunState? state, RunToolsException? error)
    {
        Run = run;
        State = state;
        Error = error;
    }

    public string RunId => Run.RunId;

    /// <summary>The run, to act on (its local folder is not created by listing it).</summary>
    public RunDirectory Run { get; }

    public RunState? State { get; }

    public RunToolsException? Error { get; }
}

/// <summary>The runs of a root that is not a folder (a database). Implemented by a store assembly loaded only when used.</summary>
public interface IRunCatalog
{
    /// <summary>The root as messages name it (no password).</summary>
    string Display { get; }

    /// <summary>
    /// The runs <paramref name="filter"/> may match, in run id order, streamed, each turned by
    /// <paramref name="project"/> (thread-safe) into what the caller keeps, as RunsRoot.EnumerateRuns does.
    /// </summary>
    IEnumerable<T> EnumerateRuns<T>(RunFilter filter, Func<StoredRunListing, T> project);

    /// <summary>An existing run: InvalidRunId for a malformed id, RunNotFound when the database has no such run.</summary>
    RunDirectory OpenRun(string runId);

    /// <summary>
    /// Creates a run as RunsRoot.CreateRun does (run_created, then its snapshot, with its config,
    /// parameters and script stored in the database and copied to its local folder). RunExists
    /// when the id is taken; nothing is changed then.
    /// </summary>
    RunDirectory CreateRun(RunCreateOptions options);
}

/// <summary>What a store assembly exposes: its catalog for a root. Found by name (<see cref="RunCatalogs"/>).</summary>
internal interface IRunStoreProvider
{
    IRunCatalog OpenCatalog(RootLocation root);

    /// <summary>
    /// Every run's id and name, newest id first, for tab completion: one query, bounded by
    /// <paramref name="timeout"/> (connecting included), never retried, never creating or
    /// migrating the schema (none yet: no runs). Throws what the connection or query threw.
    /// </summary>
    IReadOnlyList<(string RunId, string Name)> ListRunNames(RootLocation root, TimeSpan timeout);
}

/// <summary>
/// The one place a store assembly is loaded. The PostgreSQL store (net8.0, with Npgsql) sits in
/// Dependencies/PostgreSql beside RunTools.Core and is loaded into the same load context as Core,
/// the first time a database root is used, so a folder-only session never loads Npgsql.
/// </summary>
public static class RunCatalogs
{
    internal const string PostgreSqlAssembly = "RunTools.Store.PostgreSql";
    internal const string PostgreSqlFolder = "PostgreSql";
    private const string ProviderType = "RunTools.Store.PostgreSql.PostgreSqlStoreProvider";

    private static readonly object s_gate = new();
    private static IRunStoreProvider? s_postgreSql;

    /// <summary>The catalog of a database root. StoreUnavailable when it cannot be reached; InvalidArgument for a folder.</summary>
    public static IRunCatalog Open(RootLocation root)
    {
        if (root is null || root.Kind != RootKind.PostgreSql)
        {
            throw new RunToolsException(ErrorIds.InvalidArgument, RunToolsErrorCategory.InvalidArgument, $"'{root}' is a folder, not a database: read it with RunsRoot.", root?.Display);
        }

        return PostgreSqlProvider(root).OpenCatalog(root);
    }

    /// <summary>
    /// The run ids and names of a database root for tab completion (newest id first), or nothing
    /// when they cannot be read within <paramref name="timeout"/>: an unreachable server, a missing
    /// password (never prompted for), a malformed root or a store that cannot load. Never throws,
    /// never waits longer than the timeout, and writes nothing to the database.
    /// </summary>
    public static IReadOnlyList<(string RunId, string Name)> TryListRunNames(RootLocation root, TimeSpan timeout)
    {
        if (root is null || root.Kind != RootKind.PostgreSql)
        {
            return Array.Empty<(string, string)>();
        }

        // Loading the store, connecting and querying all count against the timeout; a listing still
        // running then finishes (or fails) on its own, bounded by the same timeout, and is dropped.
        var listing = System.Threading.Tasks.Task.Run(() => PostgreSqlProvider(root).ListRunNames(root, timeout));
        try
        {
            return listing.Wait(timeout) ? listing.Result : Array.Empty<(string, string)>();
        }
        catch (AggregateException)
        {
            return Array.Empty<(string, string)>();
        }
        finally
        {
            // Observed, so that a listing that fails after the timeout is not an unobserved task exception.
            listing.ContinueWith(t => t.Exception, System.Threading.Tasks.TaskContinuationOptions.OnlyOnFaulted);
        }
    }

    private static IRunStoreProvider PostgreSqlProvider(RootLocation root)
    {
        lock (s_gate)
        {
            return s_postgreSql ??= LoadPostgreSql(root);
        }
    }

    private static IRunStoreProvider LoadPostgreSql(RootLocation root)
    {
        // Windows PowerShell 5.1 runs on .NET Framework, PowerShell 7.2/7.3 on .NET 6/7: Npgsql 10 needs .NET 8.
        if (RuntimeInformation.FrameworkDescription.StartsWith(".NET Framework", StringComparison.Ordinal) || Environment.Version.Major < 8)
        {
            throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.InvalidOperation,
                $"The runs root {root.Display} is a PostgreSQL database, and the PostgreSQL store needs PowerShell 7.4 or later (this is {RuntimeInformation.FrameworkDescription}). Run the command in pwsh 7.4+, or use a folder root.", root.Display);
        }

        Assembly assembly;
        try
        {
            assembly = LoadBesideCore();
        }
        catch (Exception ex) when (ex is FileNotFoundException || ex is FileLoadException || ex is BadImageFormatException)
        {
            throw new RunToolsException(ErrorIds.StoreUnavailable, RunToolsErrorCategory.ObjectNotFound,
                $"The runs root {root.Display} is a PostgreSQL database, but the PostgreSQL store could not be loaded ({ex.Message}). Reinstall the RunTools module (it ships Dependencies/{PostgreSqlFolder}), and use PowerShell 7.4 or later.", root.Display, ex);
        }

        var type = assembly.GetType(ProviderType, throwOnError: true)!;
        return (IRunStoreProvider)Activator.CreateInstance(type, nonPublic: true)!;
    }

    /// <summary>
    /// From Dependencies/PostgreSql into Core's own load context (the module's private one), so the
    /// store binds to this very Core; where there is no such folder (tests, a flat build) by name.
    /// </summary>
    private static Assembly LoadBesideCore()
    {
        var core = typeof(RunCatalogs).Assembly;
        string file = Path.Combine(Path.GetDirectoryName(core.Location) ?? ".", PostgreSqlFolder, PostgreSqlAssembly + ".dll");
        if (File.Exists(file))
        {
            // netstandard2.0 cannot name AssemblyLoadContext; its members are reached by reflection.
            var contextType = Type.GetType("System.Runtime.Loader.AssemblyLoadContext, System.Runtime.Loader", throwOnError: true)!;
            object context = contextType.GetMethod("GetLoadContext", new[] { typeof(Assembly) })!.Invoke(null, new object[] { core })!;
            return (Assembly)contextType.GetMethod("LoadFromAssemblyPath", new[] { typeof(string) })!.Invoke(context, new object[] { file })!;
        }

        return Assembly.Load(new AssemblyName(PostgreSqlAssembly));
    }
}
