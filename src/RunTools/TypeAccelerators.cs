using System;
using System.Management.Automation;

namespace RunTools;

/// <summary>
/// The enums operators use (RunTools.RunStatus, ...) live in RunTools.Core, which loads in an
/// isolated context that PowerShell's type-name lookup does not search. Registering them as type
/// accelerators under their full names keeps `[RunTools.RunStatus]::Stopped` working in scripts.
/// </summary>
public sealed class TypeAccelerators : IModuleAssemblyInitializer
{
    private static readonly Type[] s_public =
    {
        typeof(RunStatus), typeof(StepStatus), typeof(ArtifactMode), typeof(InDoubtAction), typeof(LegacyFormat),
        typeof(RunProblemKind), typeof(RunProblemSeverity), typeof(RunComparisonProperty), typeof(RunDifferenceKind),
    };

    public void OnImport()
    {
        var accelerators = typeof(PSObject).Assembly.GetType("System.Management.Automation.TypeAccelerators");
        var add = accelerators?.GetMethod("Add", new[] { typeof(string), typeof(Type) });
        foreach (var type in s_public)
        {
            add?.Invoke(null, new object[] { type.FullName!, type });
        }
    }
}
