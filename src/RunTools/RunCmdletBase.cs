using System;
using System.Collections;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Configuration;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>What every RunTools cmdlet shares: where runs live, finding them, reading configs, and turning Core errors into ErrorRecords.</summary>
public abstract class RunCmdletBase : PSCmdlet
{
    internal const string RootVariable = "RUNTOOLS_ROOT";

    /// <summary>-Root, else $env:RUNTOOLS_ROOT, else ./runs: a folder (resolved against the current PowerShell location) or a database URI; InvalidArgument for a malformed URI.</summary>
    protected RootLocation ResolveRootLocation(string? root)
    {
        string chosen = !string.IsNullOrEmpty(root) ? root!
            : Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
            : "runs";
        return RootLocation.Parse(chosen, SessionState.Path.GetUnresolvedProviderPathFromPSPath);
    }

    /// <summary>
    /// The run a RunInfo names: its folder, or for a run listed from a database the same run opened
    /// again (by the RunInfo's own handle in this session, else by its root and id, as after a job
    /// or a deserialization; the root then has no password, which Npgsql takes from PGPASSWORD or ~/.pgpass).
    /// </summary>
    private protected RunDirectory OpenRunOf(RunInfo input)
    {
        if (input.Path is { } path)
        {
            return RunDirectory.Open(path);
        }

        if (input.Run is { DatabaseRoot: not null } run)
        {
            return run;
        }

        var location = RootLocation.Parse(input.Root, SessionState.Path.GetUnresolvedProviderPathFromPSPath);
        if (location.Kind == RootKind.Folder)
        {
            return new RunsRoot(location.FolderPath!).OpenRun(input.RunId);
        }

        return RunCatalogs.Open(location).OpenRun(input.RunId);
    }

    protected string ResolvePath(string path) => SessionState.Path.GetUnresolvedProviderPathFromPSPath(path);

    /// <summary>A run by id under a root (a folder or a database), by RunInfo, or by path.</summary>
    protected RunDirectory FindRun(string? runId, string? root, RunInfo? input, string? path)
    {
        if (input is not null)
        {
            return OpenRunOf(input);
        }

        if (!string.IsNullOrEmpty(path))
        {
            return RunDirectory.Open(ResolvePath(path!));
        }

        var location = ResolveRootLocation(root);
        if (location.Kind != RootKind.Folder)
        {
            return RunCatalogs.Open(location).OpenRun(runId ?? string.Empty);
        }

        RequireRootDirectory(location.FolderPath!);
        return new RunsRoot(location.FolderPath!).OpenRun(runId ?? string.Empty);
    }

    /// <summary>RootNotDirectory when the runs root exists but is not a directory (see RunsRoot.RequireDirectory).</summary>
    protected static void RequireRootDirectory(string rootPath) => new RunsRoot(rootPath).RequireDirectory();

    /// <summary>
    /// The wildcard patterns of a parameter, each parsed now so that a malformed one ('[', '[a')
    /// is an InvalidWildcardPattern argument error, not a WildcardPatternException mid-listing.
    /// </summary>
    protected static List<WildcardPattern> WildcardPatterns(IEnumerable<string> values, string parameter) =>
        values.Select(value => ParseWildcard(value, parameter)).ToList();

    /// <summary>One wildcard pattern, or InvalidWildcardPattern with how to write it.</summary>
    protected static WildcardPattern ParseWildcard(string value, string parameter)
    {
        var pattern = new WildcardPattern(value, WildcardOptions.IgnoreCase);
        try
        {
            pattern.IsMatch(string.Empty);
        }
        catch (WildcardPatternException ex)
        {
            throw new RunToolsException(ErrorIds.InvalidWildcardPattern, RunToolsErrorCategory.InvalidArgument,
                $"-{parameter} '{value}' is not a valid wildcard pattern ({ex.Message.TrimEnd('.')}). To match '[' or ']' literally, escape each as '[[]' or '[]]' (or with a backtick), e.g. -{parameter} '{value.Replace("[", "[[]")}', or pass the exact value without wildcard characters.", value, ex);
        }

        return pattern;
    }

    /// <summary>
    /// The runs one selection names (see <see cref="RunSelectionCmdletBase"/>), in the order given:
    /// each id under the root, the runs whose name matches a pattern (in run id order), each
    /// RunInfo, each run directory. A bad selection (a malformed id, an id, exact name or path with
    /// no run, a malformed pattern) is one non-terminating error and the rest go on; a bad root is
    /// one error for all the ids or names under it.
    /// </summary>
    private protected IEnumerable<SelectedRun> SelectRuns(string parameterSet, IReadOnlyList<string> runIds, IReadOnlyList<string> names,
        string? root, IReadOnlyList<RunInfo> inputs, IReadOnlyList<string> paths)
    {
        switch (parameterSet)
        {
            case RunSelectionSets.ByName:
                return SelectByName(names, root);
            case RunSelectionSets.ByInputObject:
                return SelectByInput(inputs);
            case RunSelectionSets.ByPath:
                return SelectByPath(paths);
            default:
                return SelectById(runIds, root);
        }
    }

    private IEnumerable<SelectedRun> SelectById(IReadOnlyList<string> runIds, string? root)
    {
        if (OpenRoot(root) is not { } runsRoot)
        {
            yield break;
        }

        foreach (string id in runIds)
        {
            // OpenRun says InvalidRunId for a malformed id and RunNotFound for a missing run.
            if (TrySelect(() => runsRoot.Folder?.OpenRun(id) ?? runsRoot.Catalog!.OpenRun(id), id) is { } run)
            {
                yield return new SelectedRun(run, id);
            }
        }
    }

    /// <summary>A runs root opened to select runs under: a folder, or a database's catalog.</summary>
    private sealed class OpenedRoot
    {
        public RunsRoot? Folder { get; set; }

        public IRunCatalog? Catalog { get; set; }

        public string Display => Folder?.Path ?? Catalog!.Display;

        /// <summary>Every run with its state (null when unreadable), in run id order; a database gets the name patterns as its filter.</summary>
        public IEnumerable<(RunDirectory Run, Core.State.RunState? State)> List(IReadOnlyList<string> names) =>
            Folder is not null
                ? Folder.ListRuns().Select(l => (l.Run, l.State))
                : Catalog!.EnumerateRuns(new RunFilter { NamePatterns = names }, l => (l.Run, l.State)).ToList();
    }

    private IEnumerable<SelectedRun> SelectByName(IReadOnlyList<string> names, string? root)
    {
        var patterns = new List<(string Name, WildcardPattern Pattern)>();
        foreach (string name in names)
        {
            try
            {
                patterns.Add((name, ParseWildcard(name, "Name")));
            }
            catch (RunToolsException ex)
            {
                WriteSelectionError(ToErrorRecord(ex, name));
            }
        }

        if (patterns.Count == 0 || OpenRoot(root) is not { } runsRoot)
        {
            yield break;
        }

        List<(RunDirectory Run, Core.State.RunState? State)> listings;
        try
        {
            listings = runsRoot.List(patterns.Select(p => p.Name).ToList()).ToList();
        }
        catch (Exception ex) when (ex is RunToolsException || IsIoError(ex))
        {
            WriteSelectionError(ex is RunToolsException known ? ToErrorRecord(known, runsRoot.Display) : IoErrorRecord(ex, runsRoot.Display));
            yield break;
        }

        var matched = new HashSet<string>(StringComparer.Ordinal);
        foreach (var listing in listings)
        {
            // A run whose state cannot be read has no name to match; Get-Run and Test-Run report it.
            if (listing.State is not { } state)
            {
                continue;
            }

            bool any = false;
            foreach (var (name, pattern) in patterns.Where(p => p.Pattern.IsMatch(state.Name)))
            {
                matched.Add(name);
                any = true;
            }

            if (any)
            {
                yield return new SelectedRun(listing.Run, listing.Run.RunId, state);
            }
        }

        // A wildcard that matches nothing is an empty selection, as with Get-ChildItem; an exact name is not.
        foreach (var (name, _) in patterns.Where(p => !matched.Contains(p.Name) && !WildcardPattern.ContainsWildcardCharacters(p.Name)))
        {
            WriteSelectionError(ToErrorRecord(new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                $"No run named '{name}' under '{runsRoot.Display}'. List runs with Get-Run, or pass the right -Root.", name)));
        }
    }

    private IEnumerable<SelectedRun> SelectByInput(IReadOnlyList<RunInfo> inputs)
    {
        foreach (var input in inputs)
        {
            if (TrySelect(() => OpenRunOf(input), input) is { } run)
            {
                yield return new SelectedRun(run, input);
            }
        }
    }

    private IEnumerable<SelectedRun> SelectByPath(IReadOnlyList<string> paths)
    {
        foreach (string path in paths)
        {
            if (TrySelect(() => RunDirectory.Open(ResolvePath(path)), path) is { } run)
            {
                yield return new SelectedRun(run, run.RunId);
            }
        }
    }

    /// <summary>The runs root to select under, or null after its one error (not a directory, a path PowerShell cannot resolve, a database that cannot be reached).</summary>
    private OpenedRoot? OpenRoot(string? root)
    {
        try
        {
            var location = ResolveRootLocation(root);
            if (location.Kind != RootKind.Folder)
            {
                // Opening the catalog loads the PostgreSQL store (and Npgsql) the first time a database root is used.
                return new OpenedRoot { Catalog = RunCatalogs.Open(location) };
            }

            RequireRootDirectory(location.FolderPath!);
            return new OpenedRoot { Folder = new RunsRoot(location.FolderPath!) };
        }
        catch (RunToolsException ex)
        {
            WriteSelectionError(ToErrorRecord(ex));
        }
        catch (RuntimeException ex)
        {
            WriteSelectionError(new ErrorRecord(ex.ErrorRecord, ex));
        }

        return null;
    }

    /// <summary>Opens one selected run, or writes its one error and returns null.</summary>
    private RunDirectory? TrySelect(Func<RunDirectory> open, object target)
    {
        try
        {
            return open();
        }
        catch (RunToolsException ex)
        {
            WriteSelectionError(ToErrorRecord(ex, target));
        }
        catch (RuntimeException ex)
        {
            // A path PowerShell cannot resolve (an unknown drive, another provider).
            WriteSelectionError(new ErrorRecord(ex.ErrorRecord, ex));
        }
        catch (Exception ex) when (IsIoError(ex))
        {
            WriteSelectionError(IoErrorRecord(ex, target));
        }

        return null;
    }

    /// <summary>Every error of a selection goes through here (Resume-Run also records it in $LASTEXITCODE).</summary>
    private protected virtual void WriteSelectionError(ErrorRecord error) => WriteError(error);

    /// <summary>A config from a path (.json, .yaml, .yml, .psd1), a hashtable, or nothing.</summary>
    protected EffectiveConfig LoadConfig(object? config)
    {
        config = Conversion.Unwrap(config);
        switch (config)
        {
            case null:
                return EffectiveConfig.Empty;
            case IDictionary dictionary:
                return EffectiveConfig.FromDictionary(Conversion.UnwrapDictionary(dictionary));
            case string text when text.Length > 0:
                return LoadConfigFile(ResolvePath(text));
            case FileInfo file:
                return LoadConfigFile(file.FullName);
            case DirectoryInfo directory:
                // A folder given as an object is refused as a folder given by path is.
                EffectiveConfig.CheckFile(directory.FullName);
                goto default;
            default:
                throw new RunToolsException(ErrorIds.InvalidConfig, RunToolsErrorCategory.InvalidArgument,
                    $"-Config takes a path to a .json, .yaml, .yml or .psd1 file, or a hashtable; it was given a {config.GetType().Name}.", config);
        }
    }

    protected EffectiveConfig LoadConfigFile(string path)
    {
        if (!string.Equals(Path.GetExtension(path), ".psd1", StringComparison.OrdinalIgnoreCase))
        {
            return EffectiveConfig.FromFile(path);
        }

        EffectiveConfig.CheckFile(path);
        if (!File.Exists(path))
        {
            throw new InvalidConfigException($"Config file '{path}' does not exist. Check the path, or pass the config with -Config.", path);
        }

        System.Collections.ObjectModel.Collection<PSObject> result;
        try
        {
            // -ErrorAction Stop: a file that does not parse (a syntax error, a duplicate key) is an
            // error, never an empty config.
            result = InvokeCommand.InvokeScript("param($p) Import-PowerShellDataFile -LiteralPath $p -ErrorAction Stop", false, System.Management.Automation.Runspaces.PipelineResultTypes.None, null, path);
        }
        catch (RuntimeException ex)
        {
            throw new InvalidConfigException($"Config file '{path}' is not a valid PowerShell data file: {ex.Message} Fix the file and try again.", path, inner: ex);
        }

        if (result.Count != 1 || Conversion.Unwrap(result[0]) is not IDictionary data)
        {
            throw new InvalidConfigException(
                $"Config file '{path}' does not hold one hashtable (it gave {(result.Count == 1 ? "a " + (Conversion.Unwrap(result[0])?.GetType().Name ?? "null") : result.Count + " values")}); a .psd1 config is a single @{{ ... }} literal. Fix the file and try again.", path);
        }

        return EffectiveConfig.FromDictionary(Conversion.UnwrapDictionary(data), path, ConfigFormat.PowerShellData);
    }

    /// <summary>
    /// Converts a legacy directory into a run (ConvertTo-Run, and Resume-Run -Path on a directory
    /// without RunTools state): the script's steps are read from its syntax tree and passed to
    /// Core with the config; warnings and decisions go to the warning and verbose streams.
    /// Null when ShouldProcess declined.
    /// </summary>
    protected Core.Conversion.ConversionResult? ConvertLegacyDirectory(string path, LegacyFormat format, string? name, string? scriptPath, object? config, IRunCatalog? database = null)
    {
        byte[]? script = null;
        IReadOnlyList<Core.Conversion.DeclaredStep> steps = Array.Empty<Core.Conversion.DeclaredStep>();
        if (scriptPath is not null)
        {
            RequireRegularScript(scriptPath);
            if (!File.Exists(scriptPath))
            {
                throw new RunToolsException(ErrorIds.ScriptNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"Run script '{scriptPath}' does not exist. Check -ScriptPath.", scriptPath);
            }

            script = File.ReadAllBytes(scriptPath);
            steps = ScriptSteps.Read(scriptPath, out var notes);
            foreach (string note in notes)
            {
                WriteVerbose(note);
            }
        }

        var resolved = Core.Conversion.LegacyConversion.Resolve(path, format, steps.Count > 0, database?.Display);
        string action = database is null
            ? $"Convert to a RunTools run (legacy format {resolved}); RunTools state is written beside the legacy files"
            : $"Convert to a RunTools run in {database.Display} (legacy format {resolved}); the directory is only read";
        if (!ShouldProcess(path, action))
        {
            return null;
        }

        var options = new Core.Conversion.ConversionOptions
        {
            Format = format,
            Name = name,
            Config = config is null ? null : LoadConfig(config),
            Script = script,
            ScriptSourcePath = scriptPath,
            Steps = steps,
            Observer = new CmdletObserver(this),
        };
        return database is null
            ? Core.Conversion.LegacyConversion.Convert(path, options)
            : Core.Conversion.LegacyConversion.ConvertInto(path, options, database);
    }

    /// <summary>A run script must be a regular file: a FIFO would block the read for ever, a directory is not a script.</summary>
    protected static void RequireRegularScript(string script)
    {
        if (script.Length > 0)
        {
            Core.Infrastructure.InputFile.RequireRegular(script, "Run script", "Pass the path of a .ps1 file with -ScriptPath.");
        }
    }

    protected static ErrorRecord ToErrorRecord(RunToolsException exception) =>
        new(exception, exception.ErrorId, MapCategory(exception.Category), exception.Target);

    protected static ErrorRecord ToErrorRecord(RunToolsException exception, object? target) =>
        new(exception, exception.ErrorId, MapCategory(exception.Category), target ?? exception.Target);

    protected static ErrorCategory MapCategory(RunToolsErrorCategory category) =>
        Enum.TryParse(category.ToString(), out ErrorCategory mapped) ? mapped : ErrorCategory.NotSpecified;

    /// <summary>
    /// A raw I/O error that reached a cmdlet. Core reports every failed write (export, import,
    /// conversion, run state, delete) as WriteFailed with its own path, cause and next step, so
    /// what is left is a read: FileUnreadable, with the OS's reason and what to check.
    /// </summary>
    protected static ErrorRecord IoErrorRecord(Exception exception, object? target)
    {
        var category = exception is UnauthorizedAccessException ? RunToolsErrorCategory.PermissionDenied : RunToolsErrorCategory.ReadError;
        var error = new RunToolsException(ErrorIds.FileUnreadable, category,
            $"'{target}' could not be read: {RunExecutor.Sentence(exception.Message)} Check the path and its permissions, then try again.", target, exception);
        return new ErrorRecord(error, ErrorIds.FileUnreadable, MapCategory(category), target);
    }

    protected static bool IsIoError(Exception exception) => exception is IOException || exception is UnauthorizedAccessException;
}
