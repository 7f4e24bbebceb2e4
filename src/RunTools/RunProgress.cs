using System.Management.Automation;

namespace RunTools;

/// <summary>
/// The progress of a run script: the run as the parent activity ("n of m steps done" and a percent when the
/// script's steps are all literal) and the items of the current step as its child.
/// </summary>
internal static class RunProgress
{
    internal const int RunActivityId = 10;
    internal const int ItemActivityId = 11;

    /// <summary>The run-level record, written as each step begins.</summary>
    internal static ProgressRecord ForStep(RunContext context, string step)
    {
        var info = RunInfo.From(context.Run, context.Engine.State);
        // Completed steps, not a position: on resume a replayed step comes after steps already done.
        string status = info.StepsTotal is int total && total > 0
            ? $"{step}: {info.StepsCompleted} of {total} steps done"
            : $"{step}: {info.StepsCompleted} steps done";
        var record = new ProgressRecord(RunActivityId, $"Run {info.Name} ({info.RunId}), attempt {context.Attempt}", status);
        if (info.StepsTotal is int all && all > 0)
        {
            record.PercentComplete = System.Math.Min(100, 100 * info.StepsCompleted / all);
        }

        return record;
    }

    /// <summary>The items of a step, under the run's record.</summary>
    internal static ProgressRecord ForItems(string step, string status) =>
        new(ItemActivityId, $"Step {step}", status) { ParentActivityId = RunActivityId };
}
