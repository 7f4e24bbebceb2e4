using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation;
using RunTools.Core;

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
        var roots = Root.Length == 0 ? new[] { ResolveRoot(null) } : Root.Select(ResolveRoot).ToArray();

        foreach (string rootPath in roots)
        {
            try
            {
                RequireRootDirectory(rootPath);
            }
            catch (RunToolsException ex)
            {
                // One bad root does not hide the runs under the others.
                WriteError(ToErrorRecord(ex));
                continue;
            }

            var root = new RunsRoot(rootPath);
            var progress = new ProgressRecord(1, "Get-Run", $"Reading runs under {rootPath}");
            WriteProgress(progress);
            // Streamed: runs are read, filtered and made into RunInfo on all cores, a batch at a
            // time; this thread only writes them out (see RunsRoot.EnumerateRuns).
            var listed = root.EnumerateRuns<(string RunId, RunInfo? Info, RunToolsException? Error)>(id => idPatterns.Count == 0 || idPatterns.Any(p => p.IsMatch(id)), listing =>
            {
                if (listing.Error is not null)
                {
                    return (listing.Run.RunId, null, listing.Error);
                }

                var state = listing.State!;
                bool selected = (namePatterns.Count == 0 || namePatterns.Any(p => p.IsMatch(state.Name)))
                    && (Status.Length == 0 || Array.IndexOf(Status, state.Status) >= 0)
                    && UpdatedBefore(state, Before);
                return (listing.Run.RunId, selected ? RunInfo.From(listing.Run, state) : null, null);
            });
            foreach (var (runId, info, error) in listed)
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

            progress.RecordType = ProgressRecordType.Completed;
            WriteProgress(progress);
        }

        foreach (string missing in unmatchedLiteralIds)
        {
            var error = RunTools.Core.RunId.IsValid(missing)
                ? new RunToolsException(ErrorIds.RunNotFound, RunToolsErrorCategory.ObjectNotFound,
                    $"No run '{missing}' under {string.Join(", ", roots.Select(r => "'" + r + "'"))}. List runs with Get-Run, or pass the right -Root.", missing)
                : new RunToolsException(ErrorIds.InvalidRunId, RunToolsErrorCategory.InvalidArgument,
                    $"'{missing}' is not a valid run id: use {RunTools.Core.RunId.Rule}.", missing);
            WriteError(ToErrorRecord(error));
        }
    }

    /// <summary>True without a limit; an Unspecified time is local, as Get-Date gives it.</summary>
    internal static bool UpdatedBefore(Core.State.RunState state, DateTime? before) =>
        before is not { } limit || state.UpdatedAt.UtcDateTime < (limit.Kind == DateTimeKind.Utc ? limit : DateTime.SpecifyKind(limit, DateTimeKind.Local).ToUniversalTime());
}
