using System.Collections;
using System.Collections.Generic;
using System.Management.Automation;
using System.Management.Automation.Language;

namespace RunTools;

/// <summary>
/// Computes an item's key from -Key. The common forms — a property name, <c>{ $_ }</c> and
/// <c>{ $_.A.B }</c> — are read without invoking a script block, so that a resume skipping a
/// hundred thousand finished items does not pay a script invocation for each; any other script
/// block is invoked with $_ set to the item.
/// </summary>
internal sealed class ItemKeyReader
{
    private readonly ScriptBlock? _script;
    private readonly List<string>? _path;

    public ItemKeyReader(object key)
    {
        if (key is string property)
        {
            _path = new List<string> { property };
        }
        else if (key is ScriptBlock block)
        {
            _path = MemberPathOf(block);
            _script = _path is null ? block : null;
        }
    }

    /// <summary>The key's value for <paramref name="input"/>; <paramref name="invoke"/> runs a script block with $_ set.</summary>
    public object? Read(object? input, System.Func<ScriptBlock, object?, System.Collections.ObjectModel.Collection<PSObject>> invoke)
    {
        if (_script is not null)
        {
            var result = invoke(_script, input);
            return result.Count == 1 ? result[0]?.BaseObject : string.Join(",", System.Linq.Enumerable.Select(result, r => r?.ToString()));
        }

        object? value = _path!.Count > 0 ? input : (input as PSObject)?.BaseObject ?? input;
        foreach (string name in _path!)
        {
            value = Member(value, name);
        }

        return value is PSObject p ? p.BaseObject : value;
    }

    private static object? Member(object? value, string name)
    {
        if (value is null)
        {
            return null;
        }

        object target = value is PSObject p ? p.BaseObject : value;
        if (target is IDictionary dictionary && !(value is PSObject ps && ps.Properties[name] is PSNoteProperty))
        {
            // As PowerShell's $_.name on a hashtable: the entry of that key.
            return dictionary.Contains(name) ? dictionary[name] : PSObject.AsPSObject(value).Properties[name]?.Value;
        }

        return PSObject.AsPSObject(value).Properties[name]?.Value;
    }

    /// <summary>For <c>{ $_ }</c> / <c>{ $PSItem.A.B }</c>: the member names (empty for $_ itself); null for anything else.</summary>
    private static List<string>? MemberPathOf(ScriptBlock block)
    {
        if (block.Ast is not ScriptBlockAst { ParamBlock: null, BeginBlock: null, ProcessBlock: null, DynamicParamBlock: null, EndBlock: { } end }
            || end.Statements.Count != 1
            || end.Statements[0] is not PipelineAst { PipelineElements.Count: 1 } pipeline
            || pipeline.PipelineElements[0] is not CommandExpressionAst { Redirections.Count: 0, Expression: { } expression })
        {
            return null;
        }

        var path = new List<string>();
        while (expression is MemberExpressionAst { Static: false, Member: StringConstantExpressionAst member } access && access is not InvokeMemberExpressionAst)
        {
            path.Insert(0, member.Value);
            expression = access.Expression;
        }

        return expression is VariableExpressionAst variable && (variable.VariablePath.UserPath == "_" || variable.VariablePath.UserPath.Equals("PSItem", System.StringComparison.OrdinalIgnoreCase))
            ? path
            : null;
    }
}
