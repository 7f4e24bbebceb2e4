using System.Management.Automation;

namespace RunTools;

/// <summary>Inside a run script: the run being executed (id, attempt, config, current step and item).</summary>
[Cmdlet(VerbsCommon.Get, "RunContext", HelpUri = HelpLinks.Pages + "Get-RunContext.md")]
[OutputType(typeof(RunContext))]
public sealed class GetRunContextCommand : InScriptCmdletBase
{
    protected override void EndProcessing() => WriteObject(RequireContext());
}
