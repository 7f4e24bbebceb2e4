using System.Collections.Generic;
using System.IO;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using RunTools.Core.Infrastructure;

namespace RunTools.Core.Conversion;

/// <summary>
/// Seed 000: <c>checkpoint.json</c> (<c>run_id</c>, <c>last_processed_idx</c>,
/// <c>processed_count</c>, <c>updated_at</c>) and <c>idempotency_keys.jsonl</c> (one processed
/// message a line). Each idempotency key becomes a completed item of step <c>process</c>.
/// </summary>
internal static class CheckpointReader
{
    public const string CheckpointFile = "checkpoint.json";
    public const string KeysFile = "idempotency_keys.jsonl";

    /// <summary>The step the processed messages belong to; the run script uses Invoke-RunItem -Step process -Key { &lt;idempotency key&gt; }.</summary>
    public const string StepName = "process";

    private static readonly string[] s_keyMembers = { "key", "idempotency_key", "idem_key", "id" };

    public static bool Matches(string root) => File.Exists(Path.Combine(root, CheckpointFile)) || File.Exists(Path.Combine(root, KeysFile));

    public static void Read(ConversionPlan plan)
    {
        var step = plan.Step(StepName);
        var checkpoint = LegacyConversion.ReadLegacyJson(plan, CheckpointFile, "corrupt_checkpoint", "the idempotency keys decide what is done.", out _);
        if (!File.Exists(plan.Full(CheckpointFile)))
        {
            plan.Warn("missing_checkpoint", $"There is no {CheckpointFile}.", "the idempotency keys alone decide which messages are done.",
                "Nothing to do if the keys file is complete.", CheckpointFile);
        }

        plan.LegacyRunId = LenientJson.Str(checkpoint, "run_id");
        long? lastIndex = LenientJson.Long(checkpoint, "last_processed_idx");
        long? count = LenientJson.Long(checkpoint, "processed_count");
        plan.Legacy["checkpoint"] = checkpoint?.DeepClone();

        var keys = ReadKeys(plan, out int badLines, out int recoveredLines, out int duplicates);
        foreach (string key in keys)
        {
            step.Item(key);
        }

        plan.Legacy["keys"] = keys.Count;
        plan.Legacy["bad_lines"] = badLines;
        plan.Legacy["recovered_lines"] = recoveredLines;
        plan.Legacy["duplicate_keys"] = duplicates;

        // The checkpoint's position against the keys. The keys win: the store is what kept the
        // earlier runner from submitting a message twice (its checkpoint was written at start only).
        if (count is { } c && c != keys.Count)
        {
            plan.Warn("checkpoint_disagrees",
                $"{CheckpointFile} says processed_count {c}, but {KeysFile} holds {keys.Count} distinct key(s).",
                $"the keys are the truth: each of the {keys.Count} key(s) is a completed item of step '{StepName}'; the checkpoint's count is not used.",
                keys.Count < c
                    ? $"{c - keys.Count} processed message(s) have no key: if they are met again they will be processed again. Check their side effects in the outside world before resuming."
                    : "Nothing to do: the earlier runner did not update its checkpoint during the loop.", CheckpointFile);
        }

        if (lastIndex is { } last && (count is null ? last + 1 != keys.Count : last + 1 != count))
        {
            long expected = count ?? keys.Count;
            plan.Warn("checkpoint_position_disagrees",
                $"{CheckpointFile} says last_processed_idx {last}, which does not fit {(count is null ? $"the {keys.Count} key(s)" : $"processed_count {count}")} (expected {expected - 1}).",
                "the position is not used; messages are matched by their idempotency key, not by index.",
                "Nothing to do, as long as the run script keys its items by the same idempotency key.", CheckpointFile);
        }

        step.Completed = false;
        step.Reason = $"{keys.Count} processed message(s) recorded as completed items (key = idempotency key); the step stays pending so that new messages are processed";
    }

    private static List<string> ReadKeys(ConversionPlan plan, out int badLines, out int recoveredLines, out int duplicates)
    {
        badLines = 0;
        recoveredLines = 0;
        duplicates = 0;
        var keys = new List<string>();
        string path = plan.Full(KeysFile);
        if (!File.Exists(path))
        {
            plan.Warn("missing_keys", $"There is no {KeysFile}.", "no message is known to be processed; nothing is marked done.",
                "If messages were processed, restore the keys file and convert again, or their side effects may be repeated.", KeysFile);
            return keys;
        }

        var seen = new HashSet<string>(System.StringComparer.Ordinal);
        foreach (var (number, text, _) in LenientJson.Lines(DurableFile.ReadAllBytes(path)))
        {
            if (text.Trim().Length == 0)
            {
                continue;
            }

            string? key = KeyOf(text, out bool exact);
            if (key is not null && (key.Length == 0 || key.Length > 1024))
            {
                // Not a key an item can have (Invoke-RunItem refuses it): the message is not marked done.
                badLines++;
                plan.Warn("bad_key_line", $"Line {number} of {KeysFile} has {(key.Length == 0 ? "an empty key" : $"a key of {key.Length} characters ({LegacyConversion.Shorten(key, 40)}), longer than an item key may be (1024)")}.",
                    "the message it recorded cannot be a completed item, so it is not marked done.",
                    "If that message was processed, its side effect may be repeated on resume: check it in the outside world first.", KeysFile);
                continue;
            }

            if (!exact)
            {
                string kept = plan.KeepDamaged(path);
                if (key is null)
                {
                    badLines++;
                    plan.Warn("bad_key_line", $"Line {number} of {KeysFile} is not a readable key record ({LegacyConversion.Shorten(text, 80)}); {kept}.",
                        "the message it recorded is unknown, so it is not marked done.",
                        "If that message was processed, its side effect may be repeated on resume: check it in the outside world first.", KeysFile);
                    continue;
                }

                recoveredLines++;
                plan.Warn("recovered_key_line", $"Line {number} of {KeysFile} is damaged, but the key '{key}' could be read from it; {kept}.",
                    "the message with that key was processed (the store records a key once the message is handled), so it is a completed item.",
                    "Check that message if in doubt; nothing to do otherwise.", KeysFile);
            }

            if (seen.Add(key!))
            {
                keys.Add(key!);
            }
            else
            {
                duplicates++;
            }
        }

        return keys;
    }

    /// <summary>The key of one line: a JSON object with <c>key</c> (or a JSON string); a damaged line may still yield it.</summary>
    private static string? KeyOf(string line, out bool exact)
    {
        exact = false;
        try
        {
            var node = JsonNode.Parse(line);
            if (node is JsonValue value && value.TryGetValue(out string? text))
            {
                exact = true;
                return text;
            }

            string? key = LenientJson.Str(node as JsonObject, s_keyMembers);
            exact = key is not null;
            return key;
        }
        catch (JsonException)
        {
        }

        var partial = LenientJson.ParseObject(Encoding.UTF8.GetBytes(line), out _, out _);
        return LenientJson.Str(partial, s_keyMembers);
    }
}
