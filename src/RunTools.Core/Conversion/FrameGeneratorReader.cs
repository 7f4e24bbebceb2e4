using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Conversion;

/// <summary>
/// Seed 004: <c>state.json</c>, <c>manifest.lock.json</c>, <c>approved/frame_NNNN.png</c>,
/// <c>candidates/</c>, <c>audit_log.jsonl</c>. Each approved frame that decodes as PNG becomes a
/// completed item of step <c>frames</c> whose key is the frame index ("3" for frame_0003.png),
/// with the file recorded in place (size + SHA-256).
/// </summary>
internal static class FrameGeneratorReader
{
    public const string StateFile = "state.json";
    public const string LockFile = "manifest.lock.json";
    public const string ApprovedFolder = "approved";
    public const string CandidatesFolder = "candidates";
    public const string AuditLogFile = "audit_log.jsonl";

    /// <summary>The step approved frames belong to: Invoke-RunItem -Step frames -Key { &lt;frame index&gt; }.</summary>
    public const string StepName = "frames";

    /// <summary>The event name of the entry the conversion appends to audit_log.jsonl.</summary>
    public const string AuditEvent = "runtools_migration";

    private static readonly Regex s_frameName = new(@"^frame_(\d{1,9})\.png$", RegexOptions.CultureInvariant);
    private static readonly string[] s_timeMembers = { "timestamp", "ts", "time", "at", "logged_at", "created_at" };
    private static readonly string[] s_eventMembers = { "event", "type", "action", "kind" };

    public static bool Matches(string root)
    {
        bool state = File.Exists(Path.Combine(root, StateFile));
        bool frames = Directory.Exists(Path.Combine(root, ApprovedFolder))
            && Directory.EnumerateFiles(Path.Combine(root, ApprovedFolder), "frame_*.png").Any();
        return frames || (state && (File.Exists(Path.Combine(root, LockFile)) || Directory.Exists(Path.Combine(root, ApprovedFolder))));
    }

    public static void Read(ConversionPlan plan)
    {
        var step = plan.Step(StepName);
        var state = LegacyConversion.ReadLegacyJson(plan, StateFile, "corrupt_state", "approved frames are taken from approved/ alone.", out _);
        var manifestLock = LegacyConversion.ReadLegacyJson(plan, LockFile, "corrupt_manifest_lock", "the manifest hash is taken from state.json.", out _);
        plan.LegacyRunId = LenientJson.Str(state, "run_id");

        string? stateHash = LenientJson.Str(state, "manifest_hash");
        string? lockHash = LenientJson.Str(manifestLock, "manifest_hash");
        plan.Legacy["run_status"] = LenientJson.Str(state, "run_status", "status");
        plan.Legacy["manifest_hash"] = lockHash ?? stateHash;
        plan.Legacy["state_manifest_hash"] = stateHash;
        plan.Legacy["resume_from_frame"] = LenientJson.Long(state, "resume_from_frame");
        plan.Legacy["resume_history"] = state?["resume_history"]?.DeepClone();
        if (stateHash is not null && lockHash is not null && !string.Equals(stateHash, lockHash, StringComparison.OrdinalIgnoreCase))
        {
            plan.Warn("manifest_hash_mismatch", $"state.json has manifest_hash {stateHash} but {LockFile} has {lockHash}.",
                $"{LockFile} holds the manifest hash the generator checks; it is kept as the legacy manifest hash.",
                "If the manifest changed after frames were approved, review the approved frames before resuming, or start a new run.", LockFile);
        }
        else if (lockHash is null && File.Exists(plan.Full(StateFile)) && !File.Exists(plan.Full(LockFile)))
        {
            plan.Warn("missing_manifest_lock", $"There is no {LockFile}.", "the manifest hash is taken from state.json" + (stateHash is null ? " (which has none either)." : "."),
                "Pass the manifest with -Config so that later changes to it are detected as drift.", LockFile);
        }

        HashSet<long>? listed = null;
        if (state?["approved_frame_indices"] is JsonArray indices)
        {
            listed = new HashSet<long>(indices.OfType<JsonValue>().Select(v => v.TryGetValue(out long l) ? l : -1).Where(l => l >= 0));
            plan.Legacy["approved_frame_indices"] = new JsonArray(listed.OrderBy(i => i).Select(i => (JsonNode)JsonValue.Create(i)!).ToArray());
        }

        var onDisk = new SortedDictionary<long, string>();
        string approved = plan.Full(ApprovedFolder);
        if (Directory.Exists(approved))
        {
            foreach (string file in Directory.EnumerateFiles(approved, "frame_*.png").OrderBy(f => f, StringComparer.Ordinal))
            {
                var match = s_frameName.Match(Path.GetFileName(file));
                if (!match.Success)
                {
                    continue;
                }

                long index = long.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
                if (onDisk.TryGetValue(index, out string? other))
                {
                    plan.Warn("duplicate_frame", $"Frame {index} is in approved/ twice: {Path.GetFileName(other)} and {Path.GetFileName(file)}.",
                        $"{Path.GetFileName(other)} is the approved one; the other file is left alone.", "Remove the file that is not the frame.", plan.Relative(file));
                    continue;
                }

                onDisk[index] = file;
            }
        }

        var corrupt = new List<long>();
        foreach (var entry in onDisk)
        {
            string relative = plan.Relative(entry.Value);
            string? problem = PngCheck.Problem(entry.Value);
            if (problem is not null)
            {
                corrupt.Add(entry.Key);
                string kept = plan.KeepDamaged(entry.Value);
                plan.Warn("corrupt_frame", $"{relative} does not decode as PNG ({problem}); {kept}.",
                    $"frame {entry.Key} is not approved; it will be generated again on resume.",
                    "Nothing to do: Resume-Run regenerates it.", relative);
                continue;
            }

            if (listed is not null && !listed.Contains(entry.Key))
            {
                plan.Warn("frame_not_in_state", $"{relative} is a valid PNG but state.json does not list frame {entry.Key} as approved.",
                    $"the file in approved/ decides (the generator skips frames it finds there): frame {entry.Key} is completed.",
                    $"If it was not approved, move it out of approved/ before resuming: its recorded checksum then fails and the frame is generated again.", relative);
            }

            step.Item(entry.Key.ToString(CultureInfo.InvariantCulture)).Artifacts.Add(plan.Artifact(entry.Value));
        }

        foreach (long index in (listed ?? new HashSet<long>()).Where(i => !onDisk.ContainsKey(i)).OrderBy(i => i))
        {
            plan.Warn("approved_frame_missing", $"state.json lists frame {index} as approved, but there is no approved/frame_{index:D4}.png.",
                $"frame {index} is not completed; it will be generated again on resume.", "Nothing to do: Resume-Run generates it.", ApprovedFolder);
        }

        string candidates = plan.Full(CandidatesFolder);
        int candidateFiles = Directory.Exists(candidates) ? Directory.EnumerateFiles(candidates, "*", SearchOption.AllDirectories).Count() : 0;
        plan.Legacy["candidates"] = candidateFiles;
        plan.Legacy["frames_to_regenerate"] = new JsonArray(corrupt.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray());
        if (candidateFiles > 0)
        {
            plan.Verbose($"candidates/ is kept as it is ({candidateFiles} file(s)).");
        }

        PrepareAuditLog(plan, step.Items.Count, corrupt);
        step.Completed = false;
        step.Reason = $"{step.Items.Count} approved frame(s) recorded as completed items (key = frame index)" +
            (corrupt.Count > 0 ? $"; frame(s) {string.Join(", ", corrupt)} do not decode and will be generated again" : string.Empty) +
            "; the step stays pending so that the remaining frames are generated";
    }

    /// <summary>
    /// The audit log is kept and continued: nothing in it is changed; the conversion appends one
    /// entry in the log's own style (its timestamp and event member names), once. The run script
    /// goes on appending its own entries to the same file.
    /// </summary>
    private static void PrepareAuditLog(ConversionPlan plan, int approvedFrames, List<long> regenerate)
    {
        string path = plan.Full(AuditLogFile);
        if (!File.Exists(path))
        {
            plan.Legacy["audit_log"] = null;
            return;
        }

        var bad = new List<int>();
        JsonObject? lastEntry = null;
        int entries = 0;
        foreach (var (number, text, _) in LenientJson.Lines(DurableFile.ReadAllBytes(path)))
        {
            if (text.Trim().Length == 0)
            {
                continue;
            }

            try
            {
                if (JsonNode.Parse(text) is JsonObject obj)
                {
                    lastEntry = obj;
                    entries++;
                    continue;
                }
            }
            catch (JsonException)
            {
            }

            bad.Add(number);
        }

        plan.Legacy["audit_log"] = new JsonObject { ["entries"] = entries, ["bad_lines"] = bad.Count };
        if (bad.Count > 0)
        {
            string kept = plan.KeepDamaged(path);
            plan.Warn("bad_audit_lines", $"{bad.Count} line(s) of {AuditLogFile} are not JSON objects (line {string.Join(", ", bad.Take(10))}); {kept}.",
                "they are left where they are; the log is continued after them.", "Nothing to do; they are part of the history.", AuditLogFile);
        }

        string timeMember = s_timeMembers.FirstOrDefault(m => lastEntry?.ContainsKey(m) == true) ?? "timestamp";
        string eventMember = s_eventMembers.FirstOrDefault(m => lastEntry?.ContainsKey(m) == true) ?? "event";
        string? legacyRunId = plan.LegacyRunId;
        string runId = Path.GetFileName(plan.Root);
        plan.BeforeCommit = () => AppendAuditEntry(path, timeMember, eventMember, new JsonObject
        {
            ["run_id"] = legacyRunId,
            ["runtools_run_id"] = runId,
            ["approved_frames"] = approvedFrames,
            ["frames_to_regenerate"] = new JsonArray(regenerate.Select(i => (JsonNode)JsonValue.Create(i)!).ToArray()),
            ["message"] = $"Adopted by RunTools as run {runId}: {approvedFrames} approved frame(s) kept" +
                (regenerate.Count > 0 ? $", frame(s) {string.Join(", ", regenerate)} to be generated again" : string.Empty) + ".",
        });
    }

    private static void AppendAuditEntry(string path, string timeMember, string eventMember, JsonObject details)
    {
        byte[] bytes = DurableFile.ReadAllBytes(path);
        var lastLine = LenientJson.Lines(bytes).LastOrDefault(l => l.Text.Trim().Length > 0);
        try
        {
            if (lastLine.Text is not null && JsonNode.Parse(lastLine.Text) is JsonObject last && LenientJson.Str(last, eventMember) == AuditEvent)
            {
                return; // appended by a conversion that was interrupted before it committed
            }
        }
        catch (JsonException)
        {
        }

        var entry = new JsonObject
        {
            [timeMember] = DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture),
            [eventMember] = AuditEvent,
        };
        foreach (var member in details.ToList())
        {
            details.Remove(member.Key);
            entry[member.Key] = member.Value;
        }

        // A log that ends in a torn line gets a newline first, so the entry stands on its own line.
        bool needsNewline = bytes.Length > 0 && bytes[bytes.Length - 1] != (byte)'\n';
        byte[] line = Encoding.UTF8.GetBytes((needsNewline ? "\n" : string.Empty) + entry.ToJsonString() + "\n");
        using var stream = new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
        stream.Write(line, 0, line.Length);
        stream.Flush(flushToDisk: true);
    }
}
