<#
.SYNOPSIS
    Runs corpus cases -Start to -End (exclusive), in this (child) pwsh, with the module imported. Before
    each case it appends "start<TAB>index<TAB>folder" to -ResultPath and after it "done<TAB>json",
    so the parent (tests/Corpus.Tests.ps1) can name the case that hung or crashed this process.
#>
param(
    [Parameter(Mandatory)] [int] $Start,
    [Parameter(Mandatory)] [int] $End,
    [Parameter(Mandatory)] [string] $ResultPath,
    [Parameter(Mandatory)] [string] $WorkRoot
)
$ErrorActionPreference = 'Stop'
Import-Module (Join-Path $PSScriptRoot 'Corpus.psm1') -Force
$cases = @(Get-CorpusCase)
$utf8 = [Text.UTF8Encoding]::new($false)
$null = New-Item -ItemType Directory -Force $WorkRoot
Initialize-CorpusTemplate -WorkRoot (Join-Path $WorkRoot ("t-" + [guid]::NewGuid().ToString('N').Substring(0, 6)))
for ($i = $Start; $i -lt [Math]::Min($End, $cases.Count); $i++) {
    $case = $cases[$i]
    $caseRoot = Join-Path $WorkRoot ("c$i")
    [IO.File]::AppendAllText($ResultPath, "start`t$i`t$caseRoot`n", $utf8)
    try {
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $outcome = Invoke-CorpusCase $case $caseRoot
        $outcome | Add-Member -NotePropertyName Ms -NotePropertyValue $watch.ElapsedMilliseconds
    }
    catch {
        # The setup itself failed: that is a broken case, not a product failure; say so.
        $outcome = [pscustomobject]@{ Id = $case.Id; Crash = "corpus setup failed: $($_.Exception.Message)" }
    }
    [IO.File]::AppendAllText($ResultPath, "done`t$i`t" + ($outcome | ConvertTo-Json -Depth 5 -Compress) + "`n", $utf8)
    Remove-Item -LiteralPath $caseRoot -Recurse -Force -ErrorAction SilentlyContinue
}
