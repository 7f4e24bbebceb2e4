using System.Collections.Generic;
using System.Linq;

namespace RunTools.Core.Conversion;

/// <summary>
/// Any directory, given the run script's steps: a step whose declared output files
/// (<c>Invoke-RunStep -Output</c>) all exist is completed, with the files recorded in place
/// (size + SHA-256); any other step is pending. The decision is listed per step.
/// </summary>
internal static class GenericReader
{
    public static void Read(ConversionPlan plan, IReadOnlyList<DeclaredStep> steps)
    {
        foreach (var declared in steps)
        {
            var step = plan.Step(declared.Name);
            if (declared.OutputFiles.Count == 0)
            {
                step.Reason = "declares no output files, so there is no evidence that it ran";
                if (declared.UnreadableOutputFiles)
                {
                    plan.Warn("no_declared_outputs", $"Step '{declared.Name}' gives -OutputFile a value that is not a constant string (a variable or an expression), which conversion cannot read.",
                        "it has not run; it will run on resume.",
                        "If it already ran and must not run again, write its -OutputFile paths as constant strings in the script and convert again.");
                    continue;
                }

                plan.Warn("no_declared_outputs", $"Step '{declared.Name}' declares no output files (Invoke-RunStep -OutputFile).",
                    "it has not run; it will run on resume.",
                    "If it already ran and must not run again, declare its output files with -OutputFile in the script and convert again.");
                continue;
            }

            var found = new List<string>();
            var missing = new List<string>();
            foreach (string pattern in declared.OutputFiles)
            {
                var files = OutputFilePatterns.Expand(plan.Root, pattern);
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
                step.Artifacts.AddRange(found.Select(plan.Artifact));
                step.Reason = $"all {declared.OutputFiles.Count} declared output file(s) exist ({found.Count} file(s), recorded with size and SHA-256)";
                continue;
            }

            step.Reason = $"declared output file(s) not found: {string.Join(", ", missing)}";
            if (found.Count > 0)
            {
                plan.Warn("partial_outputs", $"Step '{declared.Name}': {found.Count} declared output file(s) exist, but nothing matches {string.Join(", ", missing)}.",
                    "the step did not finish; it will run again on resume and may write over the output files that exist.",
                    "If the missing output files are optional, drop them from -OutputFile and convert again.");
            }
        }
    }
}
