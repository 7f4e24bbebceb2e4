using System;
using System.Collections.Generic;
using System.Linq;
using System.Management.Automation.Language;
using RunTools.Core.Conversion;

namespace RunTools;

/// <summary>
/// The steps a run script names, read from its syntax tree without running it: every
/// <c>Invoke-RunStep &lt;name&gt; [-OutputFile &lt;paths&gt;]</c> and <c>Invoke-RunItem -Step &lt;name&gt;</c>
/// whose name (and output files) are constant strings, in source order.
/// </summary>
internal static class ScriptSteps
{
    private static readonly string[] s_switches = { "Verbose", "Debug", "WhatIf", "Confirm" };

    public static IReadOnlyList<DeclaredStep> Read(string path, out List<string> notes) => Read(path, out notes, out _);

    /// <summary>As above; <paramref name="complete"/> is false when a step name is not constant or the script does not parse, so the list may miss steps.</summary>
    public static IReadOnlyList<DeclaredStep> Read(string path, out List<string> notes, out bool complete)
    {
        var ast = Parser.ParseFile(path, out _, out ParseError[] errors);
        return Read(ast, errors, out notes, out complete);
    }

    /// <summary>As above, for a script already parsed (its text read from a database, say).</summary>
    public static IReadOnlyList<DeclaredStep> Read(ScriptBlockAst ast, ParseError[] errors, out List<string> notes, out bool complete)
    {
        notes = new List<string>();
        complete = true;
        if (errors.Length > 0)
        {
            notes.Add($"The script has syntax errors (first: {errors[0].Message} at line {errors[0].Extent.StartLineNumber}); only the steps that could be read are used.");
            complete = false;
        }

        var order = new List<string>();
        var outputFiles = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var unreadable = new HashSet<string>(StringComparer.Ordinal);
        foreach (CommandAst command in ast.FindAll(a => a is CommandAst, searchNestedScriptBlocks: true).Cast<CommandAst>().OrderBy(c => c.Extent.StartOffset))
        {
            string? commandName = command.GetCommandName();
            bool step = string.Equals(commandName, "Invoke-RunStep", StringComparison.OrdinalIgnoreCase);
            bool item = string.Equals(commandName, "Invoke-RunItem", StringComparison.OrdinalIgnoreCase);
            if (!step && !item)
            {
                continue;
            }

            var (name, declared, dynamic) = Bind(command, step);
            if (name is null)
            {
                if (step || dynamic)
                {
                    complete = false;
                    notes.Add($"Line {command.Extent.StartLineNumber}: the step name is not a constant string, so that step is not known before the script runs.");
                }

                continue;
            }

            if (!outputFiles.TryGetValue(name, out var list))
            {
                order.Add(name);
                outputFiles[name] = list = new List<string>();
            }

            if (declared is null)
            {
                unreadable.Add(name);
                notes.Add($"Line {command.Extent.StartLineNumber}: the -OutputFile of step '{name}' is not made of constant strings; it is ignored for conversion.");
            }
            else
            {
                list.AddRange(declared.Where(o => !list.Contains(o)));
            }
        }

        return order.Select(n => new DeclaredStep(n, outputFiles[n], unreadable.Contains(n))).ToList();
    }

    /// <summary>
    /// The steps that run items: each <c>Invoke-RunItem -Step &lt;name&gt;</c>, and each
    /// <c>Invoke-RunItem</c> without -Step written inside <c>Invoke-RunStep &lt;name&gt; { ... }</c>.
    /// Null when one cannot be told from the text (a computed name, an Invoke-RunItem in a function
    /// or outside any step, a script that does not parse).
    /// </summary>
    public static IReadOnlyCollection<string>? ReadItemSteps(string path)
    {
        var ast = Parser.ParseFile(path, out _, out ParseError[] errors);
        return ReadItemSteps(ast, errors);
    }

    /// <summary>As above, for a script already parsed.</summary>
    public static IReadOnlyCollection<string>? ReadItemSteps(ScriptBlockAst ast, ParseError[] errors)
    {
        if (errors.Length > 0)
        {
            return null;
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (CommandAst command in ast.FindAll(a => a is CommandAst c && IsCommand(c, "Invoke-RunItem"), searchNestedScriptBlocks: true).Cast<CommandAst>())
        {
            var (name, _, named) = Bind(command, isStep: false);
            if (!named)
            {
                name = EnclosingStep(command);
            }

            if (name is null)
            {
                return null;
            }

            names.Add(name);
        }

        return names;
    }

    /// <summary>The constant name of the Invoke-RunStep whose script block holds <paramref name="ast"/>, when there is one and no function lies between.</summary>
    private static string? EnclosingStep(Ast ast)
    {
        for (Ast? parent = ast.Parent; parent is not null; parent = parent.Parent)
        {
            if (parent is FunctionDefinitionAst)
            {
                return null;
            }

            if (parent is CommandAst command && IsCommand(command, "Invoke-RunStep"))
            {
                return Bind(command, isStep: true).Name;
            }
        }

        return null;
    }

    private static bool IsCommand(CommandAst command, string name) => string.Equals(command.GetCommandName(), name, StringComparison.OrdinalIgnoreCase);

    /// <summary>The step name and declared output files of one command (null when not constant).</summary>
    private static (string? Name, List<string>? OutputFiles, bool Dynamic) Bind(CommandAst command, bool isStep)
    {
        string? name = null;
        bool nameSeen = false;
        List<string>? outputFiles = new();
        int positional = 0;
        var elements = command.CommandElements;
        for (int i = 1; i < elements.Count; i++)
        {
            if (elements[i] is CommandParameterAst parameter)
            {
                string p = parameter.ParameterName;
                bool takesValue = parameter.Argument is null && !s_switches.Any(s => IsPrefix(p, s));
                var argument = parameter.Argument ?? (takesValue && i + 1 < elements.Count && elements[i + 1] is not CommandParameterAst ? elements[++i] : null);
                if ((isStep && IsPrefix(p, "Name")) || (!isStep && IsPrefix(p, "Step")))
                {
                    nameSeen = true;
                    name = Constant(argument)?.FirstOrDefault();
                }
                else if (isStep && IsPrefix(p, "OutputFile"))
                {
                    // Also matches the old name -Output, an alias of -OutputFile.
                    outputFiles = Constant(argument);
                }
                continue;
            }

            if (isStep && positional++ == 0 && !nameSeen)
            {
                nameSeen = true;
                name = Constant(elements[i])?.FirstOrDefault();
            }
        }

        return (name, outputFiles, nameSeen);
    }

    private static bool IsPrefix(string given, string parameter) =>
        given.Length > 0 && parameter.StartsWith(given, StringComparison.OrdinalIgnoreCase);

    private static List<string>? Constant(Ast? ast) => ast switch
    {
        StringConstantExpressionAst s => new List<string> { s.Value },
        ExpandableStringExpressionAst e when e.NestedExpressions.Count == 0 => new List<string> { e.Value },
        ArrayLiteralAst array => AllConstant(array.Elements),
        ParenExpressionAst { Pipeline: PipelineAst { PipelineElements.Count: 1 } pipeline } when pipeline.PipelineElements[0] is CommandExpressionAst inner => Constant(inner.Expression),
        ArrayExpressionAst { SubExpression.Statements.Count: 1 } sub when sub.SubExpression.Statements[0] is PipelineAst { PipelineElements.Count: 1 } p && p.PipelineElements[0] is CommandExpressionAst inner => Constant(inner.Expression),
        _ => null,
    };

    private static List<string>? AllConstant(IEnumerable<ExpressionAst> elements)
    {
        var values = new List<string>();
        foreach (var element in elements)
        {
            var value = Constant(element);
            if (value is null)
            {
                return null;
            }

            values.AddRange(value);
        }

        return values;
    }
}
