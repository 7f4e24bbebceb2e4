using System;
using System.IO;
using System.Management.Automation;
using RunTools.Core;

namespace RunTools;

/// <summary>What every RunTools cmdlet shares: where runs live and how Core errors become ErrorRecords.</summary>
public abstract class RunCmdletBase : PSCmdlet
{
    internal const string RootVariable = "RUNTOOLS_ROOT";

    /// <summary>-Root, else $env:RUNTOOLS_ROOT, else ./runs, resolved against the current PowerShell location.</summary>
    protected string ResolveRoot(string? root)
    {
        string chosen = !string.IsNullOrEmpty(root) ? root!
            : Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
            : "runs";
        return SessionState.Path.GetUnresolvedProviderPathFromPSPath(chosen);
    }

    protected static ErrorRecord ToErrorRecord(RunToolsException exception) =>
        new(exception, exception.ErrorId, MapCategory(exception.Category), exception.Target);

    protected static ErrorCategory MapCategory(RunToolsErrorCategory category) =>
        Enum.TryParse(category.ToString(), out ErrorCategory mapped) ? mapped : ErrorCategory.NotSpecified;

    protected static ErrorRecord IoErrorRecord(Exception exception, object? target) =>
        new(exception, "FileUnreadable", exception is UnauthorizedAccessException ? ErrorCategory.PermissionDenied : ErrorCategory.ReadError, target);

    protected static bool IsIoError(Exception exception) => exception is IOException || exception is UnauthorizedAccessException;
}
