<#
.SYNOPSIS
    The example run script: a nightly upload job. Steps and items are checkpointed.
.DESCRIPTION
    extract  lists the files to upload (its result is recorded and replayed on resume)
    upload   copies each file to the target folder once per run (keyed by file name)
    report   writes a summary and records it as an artifact
    -DelayMilliseconds slows the uploads down so that a stop or a crash can land among them.
#>
param($Config, [int] $DelayMilliseconds = 0)

$run = Get-RunContext
$target = Join-Path (Split-Path $run.Path) "../example-uploads/$($run.RunId)"
$null = New-Item -ItemType Directory -Force $target

$files = Invoke-RunStep extract {
    1..$Config.source.files | ForEach-Object { [pscustomobject]@{ Name = 'file-{0:D2}.csv' -f $_; Rows = $_ * 100 } }
}

$uploaded = $files | Invoke-RunItem -Key { $_.Name } -Step upload {
    Set-Content -Path (Join-Path $target $_.Name) -Value "uploaded $($_.Name) ($($_.Rows) rows) in attempt $($run.Attempt)"
    Start-Sleep -Milliseconds $DelayMilliseconds
    $_.Rows
}

Invoke-RunStep report {
    $report = Join-Path ([IO.Path]::GetTempPath()) "report-$($run.RunId).txt"
    "$($Config.report.title): $(@($uploaded).Count) files, $(($uploaded | Measure-Object -Sum).Sum) rows" | Set-Content $report
    Add-RunArtifact -Path $report -Name report.txt | Out-Null
    Write-Host "report written"
}
