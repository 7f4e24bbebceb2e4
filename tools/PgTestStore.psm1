<#
.SYNOPSIS
    The Pester tests' PostgreSQL helpers: a fresh schema per test for the app role, SQL as the
    cluster's superuser through psql, and commands in a child pwsh (so the test process never
    loads Npgsql). The cluster is the one tools/pg-cluster.sh starts (RUNTOOLS_TEST_PG,
    RUNTOOLS_TEST_PG_ADMIN). Not shipped with the module.
#>
Set-StrictMode -Version 3
Import-Module (Join-Path $PSScriptRoot 'ChildPwsh.psm1')

function ConvertFrom-ConnectionString([string] $Text) {
    <# Npgsql keyword strings as hashtables. #>
    $kv = @{}
    foreach ($part in $Text -split ';') { if ($part) { $k, $v = $part -split '=', 2; $kv[$k.Trim()] = $v } }
    $kv
}

function Invoke-AdminSql([string] $Sql) {
    <# SQL as the cluster's superuser, through psql. #>
    $admin = ConvertFrom-ConnectionString $env:RUNTOOLS_TEST_PG_ADMIN
    $psql = @("$env:RUNTOOLS_PG_BIN/psql", '/usr/lib/postgresql/15/bin/psql', '/usr/bin/psql') | Where-Object { Test-Path $_ } | Select-Object -First 1
    $env:PGPASSWORD = $admin.Password
    try {
        $out = & $psql -X -q -t -A -v ON_ERROR_STOP=1 -h $admin.Host -p $admin.Port -U $admin.Username -d $admin.Database -c $Sql 2>&1
        if ($LASTEXITCODE -ne 0) { throw "psql failed: $out" }
        $out
    } finally { Remove-Item Env:PGPASSWORD }
}

function New-StoreRoot([int] $Lease) {
    <# A fresh schema owned by the app role, and the -Root URI (with the app role's password) naming it; -Lease sets the lease in seconds. #>
    $app = ConvertFrom-ConnectionString $env:RUNTOOLS_TEST_PG
    $schema = 'runs_' + [guid]::NewGuid().ToString('N').Substring(0, 10)
    Invoke-AdminSql "CREATE SCHEMA $schema AUTHORIZATION $($app.Username)" | Out-Null
    [pscustomobject]@{
        Schema   = $schema
        Password = $app.Password
        Uri      = 'postgresql://{0}:{1}@{2}:{3}/{4}?schema={5}{6}' -f [uri]::EscapeDataString($app.Username), [uri]::EscapeDataString($app.Password),
            [uri]::EscapeDataString($app.Host), $app.Port, [uri]::EscapeDataString($app.Database), $schema, $(if ($Lease) { "&lease=$Lease" } else { '' })
    }
}

function Invoke-InChild([string] $Command, [hashtable] $Environment = @{}, [int] $TimeoutSec = 180) {
    <# Runs -Command in a child pwsh with the module; its last output line is JSON, returned as an object. #>
    $result = Invoke-ChildPwsh -Command $Command -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment $Environment -TimeoutSec $TimeoutSec
    if ($result.ExitCode -ne 0) { throw "The child pwsh failed ($($result.ExitCode)):`n$($result.Output)`n$($result.Error)" }
    (($result.Output -split "`n") | Where-Object { $_.Trim() } | Select-Object -Last 1) | ConvertFrom-Json
}

Export-ModuleMember -Function ConvertFrom-ConnectionString, Invoke-AdminSql, New-StoreRoot, Invoke-InChild
