using System.Collections.Generic;
using System.Linq;

namespace RunTools.Core.Migration;

/// <summary>
/// Any directory, given the run script's steps: a step whose declared outputs
/// (<c>Invoke-RunStep -Output</c>) all exist is completed, with the files recorded in place
/// (size + SHA-256); any other step is pending. The decision is listed per step.
/// </summary>
internal static class GenericImporter
{
    public static void Import(LegacyImport import, IReadOnlyList<DeclaredStep> steps)
    {
        foreach (var declared in steps)
        {
            var step = import.Step(declared.Name);
            if (declared.Outputs.Count == 0)
            {
                step.Reason = "declares no outputs, so there is no evidence that it ran";
                import.Warn("no_declared_outputs", $"Step '{declared.Name}' declares no outputs (Invoke-RunStep -Output).",
                    "it has not run; it will run on resume.",
                    "If it already ran and must not run again, declare its outputs with -Output in the script and convert again.");
                continue;
            }

            var found = new List<string>();
            var missing = new List<string>();
            foreach (string pattern in declared.Outputs)
            {
                var files = OutputPatterns.Expand(import.Root, pattern);
                if (files.Count == 0)
                {
                    missing.Add(pattern);
                }

                found.AddRange(files);
            }

            found = found.Distinct(System.StringComparer.Ordinal).ToList();
            if (missing.Count == 0)
            {
                step.Completed = true;
                step.Artifacts.AddRange(found.Select(import.Artifact));
                step.Reason = $"all {declared.Outputs.Count} declared output(s) exist ({found.Count} file(s), recorded with size and SHA-256)";
                continue;
            }

            step.Reason = $"declared output(s) not found: {string.Join(", ", missing)}";
            if (found.Count > 0)
            {
                import.Warn("partial_outputs", $"Step '{declared.Name}': {found.Count} declared output file(s) exist, but nothing matches {string.Join(", ", missing)}.",
                    "the step did not finish; it will run again on resume and may write over the outputs that exist.",
                    "If the missing outputs are optional, drop them from -Output and convert again.");
            }
        }
    }
}
