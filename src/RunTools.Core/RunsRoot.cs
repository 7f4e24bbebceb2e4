using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Threading.Tasks;
using RunTools.Core.Configuration;
using RunTools.Core.Engine;
using RunTools.Core.Infrastructure;
using RunTools.Core.Journal;
using RunTools.Core.State;
using RunTools.Core.Storage;

namespace RunTools.Core;

/// <summary>What a new run starts from.</summary>
public sealed class RunCreateOptions
{
    public string Name { get; set; } = string.Empty;

    /// <summary>A chosen id (validated); null generates a time-sortable one.</summary>
    public string? RunId { get; set; }

    public EffectiveConfig Config { get; set; } = EffectiveConfig.Empty;

    /// <summary>The run script's parameters, kept as parameters.json and hashed; null: none saved.</summary>
    public EffectiveConfig? Parameters { get; set; }

    /// <summary>The run script's bytes, kept as script.ps1 and hashed.</summary>
    public byte[] Script { get; set; } = Array.Empty<byte>();

    /// <summary>Where the script was read from (resume reads it again from there).</summary>
    public string? ScriptSourcePath { get; set; }

    /// <summary>Steps the run is known to have, in order (optional; steps are also learned as they run).</summary>
    public IReadOnlyList<string>? DeclaredSteps { get; set; }

    /// <summary>Set by conversion: the run is a legacy directory converted in place (run.json <c>migrated</c>).</summary>
    public bool Migrated { get; set; }

    public string? SourceFormat { get; set; }
}

/// <summary>A run found while listing: its state, or why it could not be read.</summary>
public sealed class RunListing
{
    internal RunListing(RunDirectory run, RunState? state, RunToolsException? error)
    {
        Run = run;
        State = state;
        Error = error;
    }

    public RunDirectory Run { get; }

    public RunState? State { get; }

    public RunToolsException? Error { get; }
}

/// <summary>A folder of run directories, one per run id.</summary>
public sealed class RunsRoot
{
    public RunsRoot(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new RunToolsException(ErrorIds.RootNotFound, RunToolsErrorCategory.InvalidArgument, "The runs root path is empty. Pass -Root or set $env:RUNTOOLS_ROOT.", path);
        }

        Path = System.IO.Path.GetFullPath(path);
    }

    public string Path { get; }

    /// <summary>Test seam: the clock of <see cref="CreateRun"/> (generated ids embed its second).</summary>
    internal Func<DateTimeOffset> Clock { get; set; } = () => DateTimeOffset.UtcNow;

    /// <summary>Test seam: the random bytes of generated ids, so that tests can force collisions.</summary>
    internal Action<byte[]> RandomSource { get; set; } = RunId.FillRandom;

    /// <summary>How many ids CreateRun draws before it gives up (a collision needs the same second and suffix).</summary>
    internal const int MaxIdDraws = 20;

    public bool Exists => Directory.Exists(Path);

    /// <summary>Ids of the run directories under the root, sorted (generated ids sort by creation time).</summary>
    public IReadOnlyList<string> EnumerateRunIds()
    {
        if (!Directory.Exists(Path))
        {
            return Array.Empty<string>();
        }

        var ids = new List<string>();
        bool setAside = false;
        foreach (string directory in Directory.EnumerateDirectories(Path))
        {
            string id = System.IO.Path.GetFileName(directory);
            if (RunId.IsValid(id) && RunDirectory.IsRunDirectory(directory))
            {
                ids.Add(id);
            }
            else
            {
                setAside |= id.StartsWith(RunFormat.ReplacedPrefix, StringComparison.Ordinal);
            }
        }

        if (setAside)
        {
            // A replacement was cut short by a crash: finish it, then list again.
            RunReplacement.Recover(Path);
            return EnumerateRunIdsOnce();
        }

        ids.Sort(StringComparer.Ordinal);
        return ids;
    }

    private List<string> EnumerateRunIdsOnce()
    {
        var ids = new List<string>();
        foreach (string directory in Directory.EnumerateDirectories(Path))
        {
            string id = System.IO.Path.GetFileName(directory);
            if (RunId.IsValid(id) && RunDirectory.IsRunDirectory(directory))
            {
                ids.Add(id);
            }
        }

        ids.Sort(StringComparer.Ordinal);
        return ids;
    }

    /// <summary>
    /// Throws RootNotDirectory when the root exists but is a file (or a FIFO, device...): said
    /// plainly, instead of "already exists" on creation or an empty listing. A missing root passes.
    /// </summary>
    public void RequireDirectory()
    {
        var kind = Infrastructure.InputFile.KindOf(Path);
        if (kind is not (Infrastructure.FileKind.Missing or Infrastructure.FileKind.Directory))
        {
            throw new RunToolsException(ErrorIds.RootNotDirectory, RunToolsErrorCategory.InvalidArgument,
                $"The runs root '{Path}' is {Infrastructure.InputFile.Describe(kind)}, not a directory. Pass a directory (or a path that does not exist yet) with -Root or $env:RUNTOOLS_ROOT.", Path);
        }
    }

    /// <summary>Reads every run's state (on all cores), in run id order; a run that cannot be read comes back with its error.</summary>
    public IReadOnlyList<RunListing> ListRuns(Func<string, bool>? idFilter = null) => EnumerateRuns(idFilter, listing => listing).ToList();

    /// <summary>
    /// Every run's listing turned by <paramref name="project"/> into what the caller keeps, in run
    /// id order, streamed. Runs are read and projected a batch at a time on all cores, the next
    /// batch while the caller consumes this one; <paramref name="project"/> must be thread-safe.
    /// Streaming lets each RunState die young: holding all of them until the end made the garbage
    /// collector copy every one (a fifth of the listing's CPU at 10,000 runs), and projecting on
    /// the reading threads takes that work off the caller's (Get-Run's pipeline) thread.
    /// </summary>
    public IEnumerable<T> EnumerateRuns<T>(Func<string, bool>? idFilter, Func<RunListing, T> project)
    {
        RequireDirectory();
        if (!Directory.Exists(Path))
        {
            yield break;
        }

        // No stat per directory up front: a folder that is not a run shows itself when its read fails.
        var ids = ListRunIds(idFilter, out bool setAside);
        if (setAside)
        {
            // A replacement was cut short by a crash (run-format §14.4): finish it, then list again.
            RunReplacement.Recover(Path);
            ids = ListRunIds(idFilter, out _);
        }

        ids.Sort(StringComparer.Ordinal);
        const int batchSize = 256;
        var options = new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount };
        Task<List<T>> ReadBatch(int first) => Task.Run(() =>
        {
            int count = Math.Min(batchSize, ids.Count - first);
            var read = new RunListing?[count];
            var projected = new T[count];
            Parallel.For(0, count, options, i =>
            {
                if ((read[i] = Read(ids[first + i])) is { } listing)
                {
                    projected[i] = project(listing);
                }
            });
            var kept = new List<T>(count);
            for (int i = 0; i < count; i++)
            {
                if (read[i] is not null)
                {
                    kept.Add(projected[i]);
                }
            }

            return kept;
        });

        Task<List<T>>? next = ids.Count > 0 ? ReadBatch(0) : null;
        for (int first = 0; next is not null; first += batchSize)
        {
            List<T> batch;
            try
            {
                batch = next.GetAwaiter().GetResult();
            }
            catch (AggregateException ex) when (ex.InnerExceptions.Count > 0)
            {
                // Parallel.For wraps what a projection threw; the caller sees the first as if called directly.
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(ex.InnerExceptions[0]).Throw();
                throw;
            }

            next = first + batchSize < ids.Count ? ReadBatch(first + batchSize) : null;
            foreach (var item in batch)
            {
                yield return item;
            }
        }
    }

    /// <summary>The names of the root's folders that are run ids (and pass <paramref name="idFilter"/>); <paramref name="setAside"/> says a run was left set aside.</summary>
    private List<string> ListRunIds(Func<string, bool>? idFilter, out bool setAside)
    {
        setAside = false;
        var ids = new List<string>();
        foreach (string directory in Directory.EnumerateDirectories(Path))
        {
            string id = System.IO.Path.GetFileName(directory);
            if (RunId.IsValid(id))
            {
                if (idFilter is null || idFilter(id))
                {
                    ids.Add(id);
                }
            }
            else
            {
                setAside |= id.StartsWith(RunFormat.ReplacedPrefix, StringComparison.Ordinal);
            }
        }

        return ids;
    }

    /// <summary>One run's listing; null for a folder that is not a run.</summary>
    private RunListing? Read(string id)
    {
        var run = new RunDirectory(System.IO.Path.Combine(Path, id), id);
        try
        {
            return new RunListing(run, run.ReadState(), null);
        }
        catch (RunToolsException ex)
        {
            return RunDirectory.IsRunDirectory(run.Path) ? new RunListing(run, null, ex) : null;
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            return new RunListing(run, null, new RunToolsException(ErrorIds.FileUnreadable, RunToolsErrorCategory.ReadError,
                $"Run '{id}' could not be read: {ex.Message}", id, ex));
        }
    }

    public RunDirectory OpenRun(string runId)
    {
        RunId.Validate(runId);
        string path = System.IO.Path.Combine(Path, runId);
        if (!Directory.Exists(path))
        {
            RunReplacement.Recover(Path);
        }

        if (!Directory.Exists(path) || !RunDirectory.IsRunDirectory(path))
        {
            throw new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No run '{runId}' under '{Path}'. List the runs there with Get-Run, or pass the right -Root.", runId);
        }

        return new RunDirectory(path, runId);
    }

    /// <summary>
    /// Creates a run: assembled in a staging folder (config, script, journal, snapshot), flushed,
    /// then renamed into place, so a run directory is either whole or absent.
    /// </summary>
    public RunDirectory CreateRun(RunCreateOptions options)
    {
        RequireDirectory();
        string name = ValidateName(options.Name);
        var now = Clock();
        string id = options.RunId is null ? RunId.Generate(name, now, RandomSource) : RunId.Validate(options.RunId);
        string target = System.IO.Path.Combine(Path, id);
        for (int draws = 1; options.RunId is null && Directory.Exists(target); draws++)
        {
            if (draws == MaxIdDraws)
            {
                throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                    $"Could not generate a free run id under '{Path}': all {draws} ids drawn for '{name}' at {now.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z name existing runs (the last was '{id}'). Pass -RunId, or try again.", id);
            }

            // A generated id met an existing run (same second, same random suffix): draw again.
            id = RunId.Generate(name, now, RandomSource);
            target = System.IO.Path.Combine(Path, id);
        }

        if (Directory.Exists(target))
        {
            throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                $"A run '{id}' already exists under '{Path}'. Choose another -RunId, or resume that run with Resume-Run.", id);
        }

        DurableFile.CreateDirectory(Path);
        RemoveAbandonedStaging();
        string staging = NewStagingPath(id);
        try
        {
            // The staging folder's own entries are flushed once, below, before it is renamed into place.
            foreach (string folder in new[] { RunFormat.StepsFolder, RunFormat.ArtifactsFolder, RunFormat.LogsFolder })
            {
                string full = System.IO.Path.Combine(staging, folder);
                FaultPoints.ThrowIfInjected(DurableOp.CreateDirectory, full);
                Directory.CreateDirectory(full);
            }

            WriteConfigFiles(staging, options.Config);
            if (options.Parameters is { } parameters)
            {
                WriteParametersFile(staging, parameters);
            }

            DurableFile.WriteAtomic(System.IO.Path.Combine(staging, RunFormat.ScriptFile), options.Script);
            string scriptHash = Integrity.Sha256Hex(options.Script);
            string? scriptSource = options.ScriptSourcePath is null ? null : System.IO.Path.GetFullPath(options.ScriptSourcePath);
            var declared = (options.DeclaredSteps ?? Array.Empty<string>()).Select(PortableName.ValidateStepName).ToList();

            using (var recorder = FileRunStore.CreateRecorder(staging, id, () => now))
            {
                recorder.Record(RunEvent.RunCreated(id, name, options, scriptHash, scriptSource, declared), Durability.Lazy);
                recorder.Snapshot();
            }

            NativeMethods.FlushDirectory(staging);
            try
            {
                FaultPoints.ThrowIfInjected(DurableOp.Rename, target);
                Directory.Move(staging, target);
            }
            catch (IOException) when (Directory.Exists(target))
            {
                throw new RunToolsException(ErrorIds.RunExists, RunToolsErrorCategory.ResourceExists,
                    $"A run '{id}' was created under '{Path}' at the same moment. Choose another -RunId.", id);
            }
        }
        catch (Exception ex) when (ex is IOException || ex is UnauthorizedAccessException)
        {
            TryDeleteDirectory(staging);
            throw DurableFile.Failed($"Could not create run '{id}' under '{Path}'", Path, ex, "No run was created.");
        }
        catch
        {
            TryDeleteDirectory(staging);
            throw;
        }

        try
        {
            NativeMethods.FlushDirectory(Path);
        }
        catch (IOException ex)
        {
            throw DurableFile.Failed($"Run '{id}' was created under '{Path}', but that folder could not be flushed to disk", target, ex,
                $"The run exists, but a power loss could still remove it; resume it with Resume-Run -RunId {id} rather than starting another.");
        }

        return new RunDirectory(target, id);
    }

    /// <summary>config.json (canonical) and, when the config came from a file, that file as config.source.&lt;ext&gt;.</summary>
    internal static void WriteConfigFiles(string runPath, EffectiveConfig config)
    {
        DurableFile.WriteAtomic(System.IO.Path.Combine(runPath, RunFormat.ConfigFile), Encoding.UTF8.GetBytes(config.CanonicalJson));
        if (config.SourcePath is { } source && File.Exists(source))
        {
            string extension = System.IO.Path.GetExtension(source).ToLowerInvariant();
            DurableFile.CopyAtomic(source, System.IO.Path.Combine(runPath, RunFormat.ConfigSourcePrefix + extension));
        }
    }

    internal static void WriteParametersFile(string runPath, EffectiveConfig parameters) =>
        DurableFile.WriteAtomic(System.IO.Path.Combine(runPath, RunFormat.ParametersFile), Encoding.UTF8.GetBytes(parameters.CanonicalJson));

    internal static string ValidateName(string? name)
    {
        if (string.IsNullOrWhiteSpace(name) || name!.Length > 200 || name.Any(char.IsControl))
        {
            throw new RunToolsException(ErrorIds.InvalidRunName, RunToolsErrorCategory.InvalidArgument,
                $"'{name}' is not a valid run name: use 1 to 200 printable characters.", name);
        }

        return name.Trim();
    }

    /// <summary>
    /// A crash during CreateRun leaves a staging folder (one a day old is certainly abandoned); a
    /// crash during RunDirectory.Delete leaves a folder already renamed out of sight for deletion.
    /// </summary>
    internal void RemoveAbandonedStaging()
    {
        foreach (string folder in Directory.EnumerateDirectories(Path, RunFormat.StagingPrefix + "*"))
        {
            if (Directory.GetLastWriteTimeUtc(folder) < DateTime.UtcNow.AddDays(-1))
            {
                TryDeleteDirectory(folder);
            }
        }

        foreach (string folder in Directory.EnumerateDirectories(Path, RunFormat.DeletingPrefix + "*"))
        {
            TryDeleteDirectory(folder);
        }

        RunReplacement.Recover(Path);
    }

    /// <summary>A fresh folder name under the root to assemble run <paramref name="id"/> in before it is renamed into place.</summary>
    internal string NewStagingPath(string id) => System.IO.Path.Combine(Path, RunFormat.StagingPrefix + id + "-" + Guid.NewGuid().ToString("N").Substring(0, 8));

    /// <summary>Best effort: what is left is removed by the next <see cref="RemoveAbandonedStaging"/> or <see cref="RunReplacement.Recover"/>.</summary>
    internal static void TryDeleteDirectory(string path)
    {
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
