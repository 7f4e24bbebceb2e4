namespace RunTools;

/// <summary>
/// Where <c>Get-Help &lt;cmdlet&gt; -Online</c> goes: each cmdlet's page in the repository
/// (the manifest's ProjectUri). docs/cmdlets/&lt;Name&gt;.md front matter and the MAML's
/// "Online Version" link carry the same address; tests/Help.Tests.ps1 checks the three agree.
/// </summary>
internal static class HelpLinks
{
    internal const string Pages = "https://github.com/runtools/RunTools/blob/main/docs/cmdlets/";
}
