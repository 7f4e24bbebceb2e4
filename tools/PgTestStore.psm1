<#
.SYNOPSIS
    The tests' way to a PostgreSQL run store: a fresh schema per test on the throwaway cluster
    (tools/pg-cluster.sh, whose RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN it reads), SQL as the
    cluster's superuser through psql, and a child pwsh with the module for every command that
    loads Npgsql (so the test process never loads it). Not shipped with the module.
#>
Set-StrictMode -Version 3
Import-Module (Join-Path $PSScriptRoot 'ChildPwsh.psm1')

function Test-PgTestCluster {
    <# Whether the cluster's connection strings are set (without them the database tests are skipped). #>
    [bool]($env:RUNTOOLS_TEST_PG -and $env:RUNTOOLS_TEST_PG_ADMIN)
}

function ConvertFrom-ConnectionString {
    <# An Npgsql keyword string (Host=...;Port=...) as a hashtable. #>
    param([string] $Text)
    $kv = @{}
    foreach ($part in $Text -split ';') { if ($part) { $k, $v = $part -split '=', 2; $kv[$k.Trim()] = $v } }
    $kv
}

function Invoke-AdminSql {
    <#
    .SYNOPSIS
        Runs SQL as the cluster's superuser through psql (unaligned, tuples only) and returns what
        it printed; throws with psql's output when it fails. -Admin: the superuser's connection
        string of another cluster (Start-OwnCluster's Admin); the shared cluster's by default.
    #>
    param([Parameter(Mandatory)] [string] $Sql, [string] $Admin = $env:RUNTOOLS_TEST_PG_ADMIN)
    $superuser = ConvertFrom-ConnectionString $Admin
    $psql = @("$env:RUNTOOLS_PG_BIN/psql", '/usr/lib/postgresql/15/bin/psql') | Where-Object { Test-Path $_ } | Select-Object -First 1
    $env:PGPASSWORD = $superuser.Password
    try {
        $out = & $psql -X -q -t -A -v ON_ERROR_STOP=1 -h $superuser.Host -p $superuser.Port -U $superuser.Username -d $superuser.Database -c $Sql 2>&1
        if ($LASTEXITCODE -ne 0) { throw "psql failed: $out" }
        $out
    } finally { Remove-Item Env:PGPASSWORD }
}

function New-StoreRoot {
    <#
    .SYNOPSIS
        A fresh schema owned by the app role (made by the administrator: the app role may not create
        schemas) and the -Root URI naming it, with the app role's password. -Query adds URI options
        (e.g. 'lease=3'). Returns Schema, Role, Password and Uri.
    #>
    param([string] $Prefix = 'runs_', [string] $Query)
    $app = ConvertFrom-ConnectionString $env:RUNTOOLS_TEST_PG
    $schema = $Prefix + [guid]::NewGuid().ToString('N').Substring(0, 10)
    $null = Invoke-AdminSql "CREATE SCHEMA $schema AUTHORIZATION $($app.Username)"
    $uri = 'postgresql://{0}:{1}@{2}:{3}/{4}?schema={5}' -f [uri]::EscapeDataString($app.Username), [uri]::EscapeDataString($app.Password),
        [uri]::EscapeDataString($app.Host), $app.Port, [uri]::EscapeDataString($app.Database), $schema
    if ($Query) { $uri += "&$Query" }
    [pscustomobject]@{ Schema = $schema; Role = $app.Username; Password = $app.Password; Uri = $uri }
}

function New-TestRoot {
    <#
    .SYNOPSIS
        A root for a test of the store-neutral cmdlet contract: a new folder under -Under, or, when
        RUNTOOLS_TEST_STORE is 'postgresql' (tests/StoreContract.Tests.ps1), a fresh schema with a
        3-second lease (so that a killed owner's run reads Interrupted soon), its runs' local
        folders under -Under too.
    #>
    param([Parameter(Mandatory)] [string] $Under, [string] $Prefix = 't_')
    if ($env:RUNTOOLS_TEST_STORE -ne 'postgresql') { return Join-Path $Under ([guid]::NewGuid().ToString('N').Substring(0, 8)) }
    $env:RUNTOOLS_LOCAL = Join-Path $Under 'local'
    (New-StoreRoot -Prefix $Prefix -Query 'lease=3').Uri
}

function Get-RunFolder {
    <# Where a run's files are on this machine: its folder, or the local folder ($env:RUNTOOLS_LOCAL) of a run in a database. #>
    param([Parameter(Mandatory)] $Info)
    if ($Info.Path) { return $Info.Path }
    @(Get-Item (Join-Path $env:RUNTOOLS_LOCAL "*/$($Info.RunId)"))[0].FullName
}

function Wait-RunInterrupted {
    <#
    A killed owner's run is Interrupted at once in a folder (the OS dropped its lock), and once its
    lease ran out in a database (New-TestRoot's is 3 s): returns the status it reads by then.
    #>
    param([Parameter(Mandatory)] [string] $RunId, [Parameter(Mandatory)] [string] $Root)
    $seconds = if ($Root -like 'postgres*:*') { 15 } else { 0 }
    $deadline = [DateTime]::UtcNow.AddSeconds($seconds)
    while (($status = (Get-Run -RunId $RunId -Root $Root).Status) -ne 'Interrupted' -and [DateTime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 200 }
    $status
}

function Invoke-InChild {
    <#
    .SYNOPSIS
        Runs -Command in a child pwsh with the module ($env:RUNTOOLS_MODULE_PATH) imported and
        returns its last output line parsed as JSON; throws with what the child printed when it fails.
    #>
    param([Parameter(Mandatory)] [string] $Command, [hashtable] $Environment = @{}, [int] $TimeoutSec = 180)
    $result = Invoke-ChildPwsh -Command $Command -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment $Environment -TimeoutSec $TimeoutSec
    if ($result.ExitCode -ne 0) { throw "The child pwsh failed ($($result.ExitCode)):`n$($result.Output)`n$($result.Error)" }
    (($result.Output -split "`n") | Where-Object { $_.Trim() } | Select-Object -Last 1) | ConvertFrom-Json
}

function Wait-Until {
    <# Polls -Condition until it is true; throws naming -What after -TimeoutSec. #>
    param([Parameter(Mandatory)] [scriptblock] $Condition, [int] $TimeoutSec = 60, [string] $What)
    $deadline = [DateTime]::UtcNow.AddSeconds($TimeoutSec)
    while (-not (& $Condition)) {
        if ([DateTime]::UtcNow -gt $deadline) { throw "Timed out waiting for $What" }
        Start-Sleep -Milliseconds 50
    }
}

function Start-OwnCluster {
    <#
    .SYNOPSIS
        A throwaway cluster of its own (tools/pg-cluster.sh), for a test that crashes, stops or
        restarts its database (doing that to the shared one would break the tests beside it):
        its Dir (for pg-cluster.sh restart/stop DIR), a -Root Uri (schema runtools, -Query
        appended, e.g. 'lease=2'), its Schema, and its superuser's Admin connection string (for
        Invoke-AdminSql -Admin). The caller stops it with Stop-OwnCluster.
    #>
    param([Parameter(Mandatory)] [string] $Prefix, [string] $Query)
    $dir = Join-Path ([IO.Path]::GetTempPath()) ($Prefix + [guid]::NewGuid().ToString('N').Substring(0, 8))
    $lines = & bash (Join-Path $PSScriptRoot 'pg-cluster.sh') start $dir 2>&1
    if ($LASTEXITCODE -ne 0) { throw "could not start a cluster: $lines" }
    $app = ConvertFrom-ConnectionString (($lines | Where-Object { $_ -like 'export RUNTOOLS_TEST_PG=*' }) -replace "^export RUNTOOLS_TEST_PG='(.*)'$", '$1')
    $uri = 'postgresql://{0}:{1}@{2}:{3}/{4}?schema=runtools' -f [uri]::EscapeDataString($app.Username), [uri]::EscapeDataString($app.Password),
        [uri]::EscapeDataString($app.Host), $app.Port, [uri]::EscapeDataString($app.Database)
    if ($Query) { $uri += "&$Query" }
    $admin = ($lines | Where-Object { $_ -like 'export RUNTOOLS_TEST_PG_ADMIN=*' }) -replace "^export RUNTOOLS_TEST_PG_ADMIN='(.*)'$", '$1'
    [pscustomobject]@{ Dir = $dir; Uri = $uri; Schema = 'runtools'; Admin = $admin }
}

function Restart-OwnCluster {
    <# Crashes the cluster (immediate shutdown, as a power cut leaves it), keeps it down -DownSeconds, and starts it again. #>
    param([Parameter(Mandatory)] $Cluster, [int] $DownSeconds = 0)
    $out = & bash (Join-Path $PSScriptRoot 'pg-cluster.sh') restart $Cluster.Dir $DownSeconds 2>&1
    if ($LASTEXITCODE -ne 0) { throw "restart failed: $out" }
}

function Stop-OwnCluster {
    param([Parameter(Mandatory)] $Cluster)
    & bash (Join-Path $PSScriptRoot 'pg-cluster.sh') stop $Cluster.Dir 2>&1 | Out-Null
}

Export-ModuleMember -Function Start-OwnCluster, Restart-OwnCluster, Stop-OwnCluster, Test-PgTestCluster, ConvertFrom-ConnectionString, Invoke-AdminSql, New-StoreRoot, New-TestRoot, Get-RunFolder, Wait-RunInterrupted, Invoke-InChild, Wait-Until
