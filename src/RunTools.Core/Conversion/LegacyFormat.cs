// Public enums shared with the module live in the RunTools namespace (see State/Enums.cs).
namespace RunTools;

/// <summary>
/// The format of a legacy directory (one written by an earlier tool) that ConvertTo-Run can convert. The stored name
/// (run.json <c>source_format</c>, the <c>run_migrated</c> event) is the snake_case of the value:
/// <c>checkpoint</c>, <c>trial_manifests</c>, <c>frame_generator</c>, <c>generic</c>.
/// </summary>
public enum LegacyFormat
{
    /// <summary>Detect the legacy format from the files present.</summary>
    Auto,

    /// <summary>checkpoint.json + idempotency_keys.jsonl (a trading runner's --run-dir).</summary>
    Checkpoint,

    /// <summary>run_state.json with phase statuses, effective_config.yaml and per-trial manifests.</summary>
    TrialManifests,

    /// <summary>state.json, manifest.lock.json, approved/frame_NNNN.png, candidates/, audit_log.jsonl.</summary>
    FrameGenerator,

    /// <summary>Any directory: steps that declare output files are completed when those files exist.</summary>
    Generic,
}
