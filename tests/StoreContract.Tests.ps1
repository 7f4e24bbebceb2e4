<#
    The cmdlet contract against the PostgreSQL store: the contract files below, written for either
    store (each takes its roots from New-Root, which makes a folder, or with RUNTOOLS_TEST_STORE
    'postgresql' a fresh schema), run here once more in a child pwsh with RUNTOOLS_TEST_STORE set,
    under the same Pester. Each of their tests is reported here as its own test, so a failure names
    the test and says why. Running them in a child keeps Npgsql out of this process (a folder-only
    session never loads it). Skipped, saying why, only without the cluster .ci/run starts.
#>
BeforeDiscovery {
    $script:contractFiles = @('Lifecycle.Tests.ps1', 'Retry.Tests.ps1', 'Parallel.Tests.ps1', 'Watch.Tests.ps1', 'AsJob.Tests.ps1', 'WrongUse.Tests.ps1', 'Scheduler.Tests.ps1')
    $script:results = @()
    # Tagged Slow (minutes of child runs): a tier that leaves Slow out (.ci/run's Pester 6 tier) does
    # not start the children at all, which discovery would otherwise do whatever the tag filter.
    $slowLeftOut = @($env:RUNTOOLS_PESTER_EXCLUDE_TAG -split ',' | ForEach-Object { $_.Trim() }) -contains 'Slow'
    if (-not $slowLeftOut -and $env:RUNTOOLS_TEST_PG -and $env:RUNTOOLS_TEST_PG_ADMIN -and $env:RUNTOOLS_MODULE_PATH) {
        Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
        $pester = (Get-Module Pester | Select-Object -First 1).Path
        foreach ($file in $script:contractFiles) {
            $path = Join-Path $PSScriptRoot $file
            $command = @"
`$ErrorActionPreference = 'Stop'
Import-Module '$($pester -replace "'", "''")'
`$configuration = New-PesterConfiguration
`$configuration.Run.Path = '$($path -replace "'", "''")'
`$configuration.Run.PassThru = `$true
`$configuration.Output.Verbosity = 'None'
`$result = Invoke-Pester -Configuration `$configuration
`$tests = @(`$result.Tests | ForEach-Object { [pscustomobject]@{ Name = `$_.ExpandedPath; Result = "`$(`$_.Result)"; Error = (@(`$_.ErrorRecord | ForEach-Object { "`$_" }) -join '; ') } })
'RTCONTRACT ' + (ConvertTo-Json -InputObject `$tests -Compress -Depth 3)
"@
            $child = Invoke-ChildPwsh -Command $command -Environment @{ RUNTOOLS_TEST_STORE = 'postgresql' } -TimeoutSec 1200
            $line = ($child.Output -split "`n") | Where-Object { $_.StartsWith('RTCONTRACT ') } | Select-Object -Last 1
            if (-not $line) {
                $script:results += @{ File = $file; Name = "$file could not run"; Result = 'Failed'; Why = "exit code $($child.ExitCode): $($child.Output) $($child.Error)" }
                continue
            }
            foreach ($test in @(($line.Substring('RTCONTRACT '.Length)) | ConvertFrom-Json)) {
                $script:results += @{ File = $file; Name = $test.Name; Result = $test.Result; Why = $test.Error }
            }
        }
    }
}

Describe 'The cmdlet contract on a PostgreSQL root' -Tag Slow {
    # Pester 6 refuses an empty -ForEach: with no results (no cluster, or Slow left out) there is one placeholder instead.
    if ($script:results.Count -eq 0) {
        It 'runs (needs the cluster .ci/run starts)' {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }
    else {
        It '<File>: <Name>' -ForEach $script:results {
            if ($Result -eq 'Skipped') {
                Set-ItResult -Skipped -Because 'the contract file skips it on a database root (see its reason there)'
                return
            }
            $Result | Should -Be 'Passed' -Because $Why
        }
    }
}
