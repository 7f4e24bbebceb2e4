# D1: durable cost per item of a run in a PostgreSQL database, through Invoke-RunItem (empty body)
# in a Start-Run script, beside a bare single-row INSERT + COMMIT loop on the same server from
# this same pwsh (Npgsql, as the store loaded it; synchronous_commit on, as the store sets it),
# interleaved round by round.
param(
    [Parameter(Mandatory)] [string] $Module,
    [Parameter(Mandatory)] [string] $Work,
    [Parameter(Mandatory)] [string] $Uri,
    [Parameter(Mandatory)] [string] $ConnectionString,
    [int] $Items = 1000,
    [int] $Rounds = 5
)
. (Join-Path $PSScriptRoot 'Common.ps1')
Import-Module $Module
$env:RUNTOOLS_LOCAL = Join-Path $Work 'local'

$runScript = Join-Path $Work 'db-items-run.ps1'
Set-Content -LiteralPath $runScript -Encoding utf8NoBOM -Value @"
param(`$N)
`$start = [Diagnostics.Stopwatch]::GetTimestamp()
1..`$N | Invoke-RunItem -Step work -Key { `$_ } { }
`$global:RtBenchSeconds = ([Diagnostics.Stopwatch]::GetTimestamp() - `$start) / [double][Diagnostics.Stopwatch]::Frequency
"@

# Warm-up, untimed: loads the store and Npgsql, JIT, the schema; and the event bytes per item.
$warmItems = [Math]::Min(200, $Items)
$warm = Invoke-BenchRun $Uri $runScript @{ N = $warmItems }
$npgsql = [AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Npgsql' } | Select-Object -First 1
$builder = [Activator]::CreateInstance($npgsql.GetType('Npgsql.NpgsqlConnectionStringBuilder'), [object[]]@($ConnectionString))
$builder.Options = '-c synchronous_commit=on'
$connection = [Activator]::CreateInstance($npgsql.GetType('Npgsql.NpgsqlConnection'), [object[]]@($builder.ConnectionString))
$connection.Open()
function Invoke-Sql([string] $Sql) { $c = $connection.CreateCommand(); $c.CommandText = $Sql; $r = $c.ExecuteScalar(); $c.Dispose(); $r }
$schema = $Uri -replace '^.*[?&]schema=([a-z0-9_]+).*$', '$1'
$itemBytes = [long](Invoke-Sql "SELECT coalesce(sum(length(line) + 1), 0) FROM $schema.events WHERE run_id = '$($warm.Info.RunId)' AND type LIKE 'item\_%'")
$itemLines = [long](Invoke-Sql "SELECT count(*) FROM $schema.events WHERE run_id = '$($warm.Info.RunId)' AND type LIKE 'item\_%'")
$bytesPerItem = [int][Math]::Round($itemBytes / $warmItems)
$null = Invoke-Sql "CREATE TABLE $schema.bench_insert (id bigint PRIMARY KEY, line bytea NOT NULL)"
function Invoke-BareInsert([int] $Count) {
    # One row of the item's event bytes per statement, each its own transaction (autocommit): INSERT + COMMIT.
    $null = Invoke-Sql "TRUNCATE $schema.bench_insert"
    $line = [byte[]]::new($bytesPerItem)
    $command = $connection.CreateCommand()
    $command.CommandText = "INSERT INTO $schema.bench_insert (id, line) VALUES (`$1, `$2)"
    $id = $command.CreateParameter(); $id.Value = [long]0; $null = $command.Parameters.Add($id)
    $data = $command.CreateParameter(); $data.Value = $line; $null = $command.Parameters.Add($data)
    $command.Prepare()
    $start = [Diagnostics.Stopwatch]::GetTimestamp()
    for ($i = 1; $i -le $Count; $i++) { $id.Value = [long]$i; $null = $command.ExecuteNonQuery() }
    $seconds = Get-Seconds $start
    $command.Dispose()
    $seconds
}
$null = Invoke-BareInsert $warmItems

$measured = @(); $totals = @(); $baseline = @()
for ($r = 0; $r -lt $Rounds; $r++) {
    Settle
    $run = Invoke-BenchRun $Uri $runScript @{ N = $Items }
    if ($run.Info.ItemsCompleted -ne $Items) { throw "run completed $($run.Info.ItemsCompleted) items, not $Items" }
    $measured += $run.Inside; $totals += $run.Total
    Settle
    $baseline += Invoke-BareInsert $Items
    Say ("  round {0}: Invoke-RunItem {1:0.000} s (Start-Run {2:0.000} s), bare INSERT+COMMIT {3:0.000} s" -f ($r + 1), $run.Inside, $run.Total, $baseline[-1])
}
$null = Invoke-Sql "DROP TABLE $schema.bench_insert"
$connection.Dispose()

Write-BenchResult @{ items = $Items; rounds = $Rounds; bytes_per_item = $bytesPerItem; lines_per_item = $itemLines / $warmItems; measured = $measured; start_run_total = $totals; baseline = $baseline }
