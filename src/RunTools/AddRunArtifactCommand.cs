using System;
using System.Management.Automation;
using RunTools.Core;
using RunTools.Core.State;

namespace RunTools;

/// <summary>Inside a run script: records a file with its size and SHA-256, copied under artifacts/ or referenced in place.</summary>
[Cmdlet(VerbsCommon.Add, "RunArtifact", HelpUri = HelpLinks.Pages + "Add-RunArtifact.md")]
[OutputType(typeof(RunArtifact))]
public sealed class AddRunArtifactCommand : InScriptCmdletBase
{
    [Parameter(Mandatory = true, Position = 0, ValueFromPipeline = true, ValueFromPipelineByPropertyName = true)]
    [Alias("FullName")]
    [ValidateNotNullOrEmpty]
    public string Path { get; set; } = string.Empty;

    /// <summary>The artifact's name ('/'-separated segments); defaults to the file name.</summary>
    [Parameter(Position = 1)]
    [ValidateNotNullOrEmpty]
    public string? Name { get; set; }

    /// <summary>Record the file where it is instead of copying it.</summary>
    [Parameter]
    public SwitchParameter Reference { get; set; }

    protected override void ProcessRecord()
    {
        var context = RequireContext();
        try
        {
            var mode = Reference ? ArtifactMode.Reference : ArtifactMode.Copy;
            var record = context.ItemKey is { } item
                ? context.Engine.AddItemArtifact(item, ResolvePath(Path), Name, mode)
                : context.Engine.AddArtifact(ResolvePath(Path), Name, mode);
            WriteObject(new RunArtifact(context.Run, record));
        }
        catch (RunToolsException ex) when (ex.ErrorId == ErrorIds.WriteFailed)
        {
            // The disk refused the copy: Core recorded the unit as failed. The whole script ends
            // (no try/catch can swallow it) and the run fails, rather than go on to record work
            // whose files cannot be kept.
            Fail(context, ex.Message, ex);
        }
        catch (RunToolsException ex)
        {
            WriteError(ToErrorRecord(ex, Path));
        }
    }
}
