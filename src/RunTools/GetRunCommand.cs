using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.Storage;

namespace RunTools;

/// <summary>Lists runs under one or more roots, filtered by id and name (wildcards) and status.</summary>
/// <remarks>
/// Not a <see cref="RunSelectionCmdletBase"/>: Get-Run lists rather than selects. Its -RunId and
/// -Name are optional wildcard filters that combine with -Status and -Before over several roots
/// (-Root is string[]), and no argument at all means every run; the selection sets, with one
/// mandatory selector each, would break all of that. It shares the wildcard parsing and the
/// RunNotFound / InvalidRunId errors for a literal id that matches nothing.
/// </remarks>
[Cmdlet(VerbsCommon.Get, "Run", HelpUri = HelpLinks.Pages + "Get-Run.md")]
[OutputType(typeof(RunInfo))]
public sealed class GetRunCommand : RunCmdletBase
{
    [Parameter(Position = 0, ValueFromPipelineByPropertyName = true)]
    [ArgumentCompleter(typeof(RunIdCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] RunId { get; set; } = Array.Empty<string>();

    [Parameter]
    [ArgumentCompleter(typeof(RunNameCompleter))]
    [SupportsWildcards]
    [ValidateNotNullOrEmpty]
    public string[] Name { get; set; } = Array.Empty<string>();

    [Parameter]
    public RunStatus[] Status { get; set; } = Array.Empty<RunStatus>();

    /// <summary>Only runs last updated before this time (retention: <c>Get-Run -Before (Get-Date).AddDays(-30)</c>).</summary>
    [Parameter]
    public DateTime? Before { get; set; }

    [Parameter(ValueFromPipelineByPropertyName = true)]
    [ValidateNotNullOrEmpty]
    public string[] Root { get; set; } = Array.Empty<string>();

    protected override void ProcessRecord()
    {
        List<WildcardPattern> idPatterns, namePatterns;
        try
        {
            idPatterns = WildcardPatterns(RunId, nameof(RunId));
            namePatterns = WildcardPatterns(Name, nameof(Name));
        }
        catch (RunToolsException ex)
        {
            ThrowTerminatingError(ToErrorRecord(ex));
            return;
        }

        var unmatchedLiteralIds = new HashSet<string>(RunId.Where(p => !WildcardPattern.ContainsWildcardCharacters(p)), StringComparer.OrdinalIgnoreCase);
        var rootNames = new List<string>();
        foreach (string? given in Root.Length == 0 ? new string?[] { null } : Root)
        {
            RootLocation location;
            try
            {
                location = ResolveRootLocation(given);
                rootNames.Add(location.Display);
                if (location.Kind == RootKind.Folder)
                {
                    RequireRootDirectory(location.FolderPath!);
                }
            }
            catch (RunToolsException ex)
            {
                // One bad root does not hide the runs under the others.
                WriteError(ToErrorRecord(ex));
                continue;
            }

            var progress = new ProgressRecord(1, "Get-Run", $"Reading runs under {location.Display}");
            WriteProgress(progress);
            try
            {
                foreach (var (runId, info, error) in Enumerate(location, idPatterns, namePatterns))
                {
                    unmatchedLiteralIds.Remove(runId);
                    if (error is not null)
                    {
                        WriteError(ToErrorRecord(error));
                    }
                    else if (info is not null)
                    {
                        WriteObject(info);
                    }
                }
            }
            catch (RunToolsException ex) when (location.Kind != RootKind.Folder)
            {
                // The database could not be reached (StoreUnavailable) or its schema used: one error for this root.
                WriteError(ToErrorRecord(ex));
            }

            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }

        foreach (string missing in unmatchedLiteralIds)
        {
            var error = RunTools.Core.RunId.IsValid(missing)
                ? new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"No run '{missing}' under {string.Join(", ", rootNames.Select(r => "'" + r + "'"))}. List runs with Get-Run, or pass the right -Root.", missing)
                : new RunToolsException(ErrorIds.InvalidRunId, RunToolsErrorCategory.InvalidArgument,
                    $"'{missing}' is not a valid run id: use {RunTools.Core.RunId.Rule}.", missing);
            WriteError(ToErrorRecord(error));
        }
    }

    /// <summary>
    /// The runs of one root, read, filtered and made into RunInfo on all cores a batch at a time;
    /// this thread only writes them out (see RunsRoot.EnumerateRuns). A database root gets the
    /// filters too, so that its query returns only the runs they may match.
    /// </summary>
    private IEnumerable<(string RunId, RunInfo? Info, RunToolsException? Error)> Enumerate(RootLocation location, List<WildcardPattern> idPatterns, List<WildcardPattern> namePatterns)
    {
        bool Selected(Core.State.RunState state) =>
            (namePatterns.Count == 0 || namePatterns.Any(p => p.IsMatch(state.Name)))
            && (Status.Length == 0 || Array.IndexOf(Status, state.Status) >= 0)
            && UpdatedBefore(state, Before);

        if (location.Kind == RootKind.Folder)
        {
            // Every run of the listing has the same root: the first run's string serves the rest, not
            // one per run. (Runs are projected on all cores; a race only makes a second equal string.)
            string? root = null;
            return new RunsRoot(location.FolderPath!).EnumerateRuns<(string, RunInfo?, RunToolsException?)>(id => idPatterns.Count == 0 || idPatterns.Any(p => p.IsMatch(id)), listing =>
                listing.Error is not null ? (listing.Run.RunId, null, listing.Error)
                : (listing.Run.RunId, Selected(listing.State!) ? RunInfo.From(listing.Run, listing.State!, root ??= listing.Run.Root) : null, null));
        }

        // Opening the catalog loads the PostgreSQL store (and Npgsql) the first time a database root is used.
        var catalog = RunCatalogs.Open(location);
        // A literal id that no run has is RunNotFound: with one, the status is not filtered in SQL, so
        // that a run the status leaves out is still seen to exist (as in a folder), then left out here.
        bool literalIds = RunId.Any(p => !WildcardPattern.ContainsWildcardCharacters(p));
        var filter = new RunFilter { RunIdPatterns = RunId, NamePatterns = Name, Statuses = literalIds ? Array.Empty<RunStatus>() : Status };
        return catalog.EnumerateRuns<(string, RunInfo?, RunToolsException?)>(filter, listing =>
            listing.Error is not null ? (listing.RunId, null, listing.Error)
            : (listing.RunId, (idPatterns.Count == 0 || idPatterns.Any(p => p.IsMatch(listing.RunId))) && Selected(listing.State!) ? RunInfo.From(listing.Run, listing.State!) : null, null));
    }

    /// <summary>True without a limit; an Unspecified time is local, as Get-Date gives it.</summary>
    internal static bool UpdatedBefore(Core.State.RunState state, DateTime? before) =>
        before is not { } limit || state.UpdatedAt.UtcDateTime < (limit.Kind == DateTimeKind.Utc ? limit : DateTime.SpecifyKind(limit, DateTimeKind.Local).ToUniversalTime());
}
