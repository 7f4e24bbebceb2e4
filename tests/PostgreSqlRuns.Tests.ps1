<#
    Runs held in a PostgreSQL database, driven through the real module: Start-Run writes them
    there, Resume-Run continues them (on "another machine": another local folder, the script file
    gone), Stop-Run stops them across processes, Get-RunEvent, Test-Run, Wait-Run, Remove-Run
    and Compare-Run (across stores) work on them, and Tab completes their ids and names (the
    archive cmdlets: tests/PostgreSqlArchive.Tests.ps1). Every command that loads Npgsql runs in a
    child pwsh (Invoke-InChild, tools/PgTestStore.psm1), so this process never has it. The
    cluster is the one .ci/run starts (RUNTOOLS_TEST_PG, RUNTOOLS_TEST_PG_ADMIN;
    tools/pg-cluster.sh); without it the tests are skipped, saying so. Each test has a schema of
    its own, made by the administrator for the app role (which may not create schemas).
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    # New-StoreRoot, Invoke-AdminSql, Invoke-InChild, Wait-Until, Start-OwnCluster (a cluster of a test's own).
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    $script:haveCluster = Test-PgTestCluster
    $script:itemsScript = Join-Path $TestDrive 'items.ps1'
    Set-Content $script:itemsScript @'
param([int] $Count = 6, [int] $DelayMs = 0, [string] $EffectsPath)
$prepared = Invoke-RunStep prepare { "prepared for $Count" }
1..$Count | Invoke-RunItem -Step work -Key { "k$_" } {
    param($i)
    if ($EffectsPath) { Add-Content -LiteralPath $EffectsPath "k$i" }
    Start-Sleep -Milliseconds $DelayMs
    $i * 2
}
Invoke-RunStep finish { "finished after $prepared" }
'@
}

Describe 'Runs in a PostgreSQL database, through every cmdlet' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'Start-Run writes the run into the database; Get-Run, Get-RunEvent, Test-Run, Compare-Run (across stores) and Remove-Run work on it' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $local = Join-Path $TestDrive 'local-a'
        $work = Join-Path $TestDrive 'cwd-a'
        $null = New-Item -ItemType Directory $work
        $out = Invoke-InChild @"
Set-Location '$work'
`$info = Start-Run -Name nightly -RunId n1 -ScriptPath '$script:itemsScript' -Root '$($store.Uri)' -Config @{ region = 'eu' } -Parameters @{ Count = 4 }
`$exit = `$LASTEXITCODE
`$listed = @(Get-Run -Root '$($store.Uri)')
`$events = @(Get-RunEvent -RunId n1 -Root '$($store.Uri)')
`$tail = @(Get-RunEvent -RunId n1 -Root '$($store.Uri)' -Last 2)
`$test = Test-Run -RunId n1 -Root '$($store.Uri)'
`$second = Start-Run -Name nightly -RunId n2 -ScriptPath '$script:itemsScript' -Root '$($store.Uri)'
`$localLog = Test-Path (Join-Path '$local' '*/n1/logs/attempt-1.log')
# Across stores: a folder run and the database run, piped together.
`$folderRun = Start-Run -Name nightly -RunId f1 -ScriptPath '$script:itemsScript' -Root '$(Join-Path $TestDrive 'folder-runs')' -Config @{ region = 'us' } -Parameters @{ Count = 4 }
`$diff = @(`$folderRun, `$info | Compare-Run -Property Config | Where-Object Name -ne hash)
`$byId = @(Compare-Run -ReferenceRunId n1 -DifferenceRunId n2 -Root '$($store.Uri)' -Property Config | Where-Object Name -ne hash)
Remove-Run -RunId n1 -Root '$($store.Uri)' -Confirm:`$false
`$afterRemove = @(Get-Run -Root '$($store.Uri)').RunId
`$gone = try { `$null = Get-RunEvent -RunId n1 -Root '$($store.Uri)' -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
[pscustomobject]@{
    Status = `$info.Status; Exit = `$exit; Root = `$info.Root; PathNull = `$null -eq `$info.Path
    Steps = `$info.StepsCompleted; Items = `$info.ItemsCompleted
    Listed = @(`$listed.RunId); ListedStatus = @(`$listed.Status)
    FirstEvent = `$events[0].Type; LastEvent = `$events[-1].Type; EventCount = `$events.Count; Sequences = @(`$events.Sequence)
    Tail = @(`$tail.Type)
    Valid = `$test.IsValid; Files = `$test.FilesChecked; TestRoot = `$test.Root; TestPathNull = `$null -eq `$test.Path
    Second = `$second.Status; LocalLog = `$localLog; CwdEntries = @(Get-ChildItem -Force -Name)
    Diff = @(`$diff | ForEach-Object { '{0}:{1}->{2}' -f `$_.Name, `$_.ReferenceValue, `$_.DifferenceValue }); ById = @(`$byId | ForEach-Object { '{0}:{1}->{2}' -f `$_.Name, `$_.ReferenceValue, `$_.DifferenceValue })
    AfterRemove = @(`$afterRemove); Gone = `$gone
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = $local }
        $out.Status | Should -Be 'Completed'
        $out.Exit | Should -Be 0
        $out.Root | Should -BeLike "postgresql://*schema=$($store.Schema)"
        $out.Root | Should -Not -BeLike "*$($store.Password)*"
        $out.PathNull | Should -BeTrue
        $out.Steps | Should -Be 3
        $out.Items | Should -Be 4
        $out.Listed | Should -Be @('n1')
        $out.ListedStatus | Should -Be @('Completed')
        $out.FirstEvent | Should -Be 'run_created'
        $out.LastEvent | Should -Be 'run_completed'
        $out.Sequences | Should -Be (1..$out.EventCount)
        $out.Tail | Should -Be @('step_completed', 'run_completed')
        $out.Valid | Should -BeTrue
        $out.Files | Should -BeGreaterOrEqual 2 # the step outputs, stored as blobs and re-hashed
        $out.TestRoot | Should -Be $out.Root
        $out.TestPathNull | Should -BeTrue
        $out.Second | Should -Be 'Completed'
        $out.LocalLog | Should -BeTrue
        $out.Diff | Should -Be @('region:"us"->"eu"')
        $out.ById | Should -Be @('region:"eu"->')
        # Nothing is written where the command ran: no runs folder, no folder named after the URI.
        $out.CwdEntries | Should -BeNullOrEmpty
        $out.AfterRemove | Should -Be @('n2')
        $out.Gone | Should -Be 'RunNotFound,RunTools.GetRunEventCommand'
        # Removed from every table, its contents no other run shares too; n2 keeps its own.
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).events WHERE run_id = 'n1'" | Should -Be '0'
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).blobs WHERE run_id = 'n1'" | Should -Be '0'
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).runs" | Should -Be '1'
        [int](Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).blobs WHERE run_id = 'n2'") | Should -BeGreaterThan 0
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).blob_contents c WHERE NOT EXISTS (SELECT 1 FROM $($store.Schema).blobs b WHERE b.content_id = c.id)" | Should -Be '0'
    }

    It 'a killed run reads Interrupted once its lease expires, and resumes on another machine from the database alone' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $effects = Join-Path $TestDrive 'effects-kill.txt'
        $script = Join-Path $TestDrive 'kill-me.ps1'
        Copy-Item $script:itemsScript $script
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-first') } -Command @"
`$null = Start-Run -Name killed -RunId k1 -ScriptPath '$script' -Root '$($store.Uri)' -Config @{ size = 'large' } -Parameters @{ Count = 40; DelayMs = 150; EffectsPath = '$effects' }
"@
        try {
            Wait-Until { (Test-Path $effects) -and @(Get-Content $effects).Count -ge 5 } -What 'five items of the first attempt'
        } finally { Stop-ChildPwsh $child }
        $before = @(Get-Content $effects)

        # The holder died; its lease would expire after 30 s: the test makes it expire now.
        Invoke-AdminSql "UPDATE $($store.Schema).leases SET expires_at = now() - interval '1 second' WHERE run_id = 'k1'" | Out-Null
        # "Another machine": another local folder, and the script file is gone.
        Remove-Item $script
        $out = Invoke-InChild @"
`$uri = '$($store.Uri)'
`$status = (Get-Run -Root `$uri -RunId k1).Status
# RunInfo.Root has no password: the pipeline reopens the store this session already has open.
`$resumed = Get-Run -Root `$uri | Where-Object Status -eq Interrupted | Resume-Run -Verbose 4>&1 | ForEach-Object { if (`$_ -is [Management.Automation.VerboseRecord]) { `$script:verbose += @(`$_.Message) } else { `$_ } }
`$test = Test-Run -RunId k1 -Root `$uri
[pscustomobject]@{
    Before = `$status; After = `$resumed.Status; Attempt = `$resumed.Attempt; Items = `$resumed.ItemsCompleted
    Valid = `$test.IsValid; Problems = @(`$test.Problems | ForEach-Object { "`$_" })
    UsedStoredScript = @(`$script:verbose | Where-Object { `$_ -like '*is not on this machine*' }).Count
    Local = @(Get-ChildItem '$(Join-Path $TestDrive 'local-second')' -Recurse -Name -Filter script.ps1)
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-second') }
        $out.Before | Should -Be 'Interrupted'
        $out.After | Should -Be 'Completed'
        $out.Attempt | Should -Be 2
        $out.Items | Should -Be 40
        $out.Valid | Should -BeTrue
        $out.UsedStoredScript | Should -Be 1
        $out.Local | Should -HaveCount 1
        # Every key ran; only what the kill left in doubt (at most the one item in flight) ran twice.
        $after = @(Get-Content $effects)
        ($after | Sort-Object -Unique).Count | Should -Be 40
        $repeated = @($after | Group-Object | Where-Object Count -gt 1)
        $repeated.Count | Should -BeLessOrEqual 1
        if ($repeated) { $before | Should -Contain $repeated[0].Name }
    }

    It 'Stop-Run stops a run working in another process; a second owner is refused naming the holder' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $effects = Join-Path $TestDrive 'effects-stop.txt'
        $owner = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-owner') } -Command @"
`$info = Start-Run -Name stopped -RunId s1 -ScriptPath '$script:itemsScript' -Root '$($store.Uri)' -Parameters @{ Count = 200; DelayMs = 100; EffectsPath = '$effects' }
'STATUS=' + `$info.Status
exit `$LASTEXITCODE
"@
        try {
            Wait-Until { (Test-Path $effects) -and @(Get-Content $effects).Count -ge 3 } -What 'the owner''s first items'
            $out = Invoke-InChild @"
`$uri = '$($store.Uri)'
`$running = (Get-Run -Root `$uri -RunId s1).Status
`$locked = try { `$null = Resume-Run -RunId s1 -Root `$uri -ErrorAction Stop; 'no error' } catch { [pscustomobject]@{ Id = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } }
Stop-Run -RunId s1 -Root `$uri -Reason 'maintenance'
`$waited = Wait-Run -RunId s1 -Root `$uri -Timeout 60
[pscustomobject]@{ Running = `$running; Locked = `$locked; Final = `$waited.Status } | ConvertTo-Json -Compress
"@
            $exit = Wait-ChildPwsh $owner -TimeoutSec 60
        } finally { Stop-ChildPwsh $owner }
        $out.Running | Should -Be 'Running'
        $out.Locked.Id | Should -Be 'RunLocked,RunTools.ResumeRunCommand'
        $out.Locked.Message | Should -BeLike "*owned by process $($owner.Process.Id)@*"
        $out.Final | Should -Be 'Stopped'
        $exit | Should -Be 3
        $owner.Stdout.Result | Should -BeLike '*STATUS=Stopped*'
        @(Get-Content $effects).Count | Should -BeLessThan 200
        Invoke-AdminSql "SELECT type FROM $($store.Schema).events WHERE run_id = 's1' ORDER BY seq DESC LIMIT 1" | Should -Be 'run_stopped'
    }

    It 'a run rides out the database crashing mid-run and staying down for 8 s: nothing lost, nothing done twice' {
        if (-not $script:haveCluster) { return }
        $own = Start-OwnCluster 'rt-crash-'
        $uri = $own.Uri
        try {
            $effects = Join-Path $TestDrive 'effects-restart.txt'
            $owner = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-restart') } -Command @"
`$info = Start-Run -Name restarted -RunId d1 -ScriptPath '$script:itemsScript' -Root '$uri' -Parameters @{ Count = 60; DelayMs = 50; EffectsPath = '$effects' }
'STATUS=' + `$info.Status
exit `$LASTEXITCODE
"@
            try {
                Wait-Until { (Test-Path $effects) -and @(Get-Content $effects).Count -ge 10 } -What 'ten items before the crash'
                # Down longer than the plain retries (0, 0.2, 1, 3 s): the owner waits it out within its lease.
                Restart-OwnCluster $own -DownSeconds 8
                $atRestart = @(Get-Content $effects).Count
                $exit = Wait-ChildPwsh $owner -TimeoutSec 120
            } finally { Stop-ChildPwsh $owner }
            $output = Get-ChildPwshOutput $owner
            $atRestart | Should -BeLessThan 60 -Because 'the server must come back while items are still to do'
            $exit | Should -Be 0 -Because "an owner retries on a new connection for as long as its lease lasts; it printed: $output"
            $output | Should -BeLike '*STATUS=Completed*'
            $done = @(Get-Content $effects)
            $done.Count | Should -Be 60
            ($done | Sort-Object -Unique).Count | Should -Be 60
            $out = Invoke-InChild @"
`$test = Test-Run -RunId d1 -Root '$uri'
`$events = @(Get-RunEvent -RunId d1 -Root '$uri')
[pscustomobject]@{ Valid = `$test.IsValid; Problems = @(`$test.Problems | ForEach-Object { "`$_" }); Completed = @(`$events | Where-Object Type -eq item_completed).Count; Contiguous = (@(`$events.Sequence) -join ',') -eq ((1..`$events.Count) -join ',') } | ConvertTo-Json -Compress
"@
            $out.Valid | Should -BeTrue -Because ($out.Problems -join '; ')
            $out.Completed | Should -Be 60
            $out.Contiguous | Should -BeTrue
            # The crash landed mid-run: the server log shows the recovery from it.
            Get-Content (Join-Path $own.Dir 'server.log') -Raw | Should -Match 'database system was interrupted|was not properly shut down'
        } finally {
            Stop-OwnCluster $own
        }
    }

    It 'an owner whose database stays down past its lease fails with StoreUnavailable and exits 1, not 4: its attempt ran' {
        if (-not $script:haveCluster) { return }
        $own = Start-OwnCluster 'rt-down-' -Query 'lease=2'
        $uri = $own.Uri
        try {
            $effects = Join-Path $TestDrive 'effects-down.txt'
            $owner = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-down') } -Command @"
try { `$null = Start-Run -Name down -RunId d2 -ScriptPath '$script:itemsScript' -Root '$uri' -Parameters @{ Count = 200; DelayMs = 50; EffectsPath = '$effects' } -ErrorAction Stop }
catch { 'ERROR=' + `$_.FullyQualifiedErrorId }
exit `$LASTEXITCODE
"@
            try {
                Wait-Until { (Test-Path $effects) -and @(Get-Content $effects).Count -ge 5 } -What 'five items before the outage'
                # Down for 10 s, well past the 2 s lease the owner waits within.
                Restart-OwnCluster $own -DownSeconds 10
                $exit = Wait-ChildPwsh $owner -TimeoutSec 120
            } finally { Stop-ChildPwsh $owner }
            $output = Get-ChildPwshOutput $owner
            $output | Should -BeLike '*ERROR=StoreUnavailable*'
            $exit | Should -Be 1 -Because "an attempt ran and then failed (4 says no attempt ran); it printed: $output"
        } finally {
            Stop-OwnCluster $own
        }
    }

    It 'the same scheduled task on two machines: Start-Run -Resume with the run id of the slot runs it once; the loser exits 4 without running anything' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $effects = Join-Path $TestDrive 'effects-ha.txt'
        # As a scheduled task's script runs it: the default ErrorActionPreference, then exit with the run's code.
        $task = @"
`$ErrorActionPreference = 'Continue'
`$null = Start-Run -Name nightly -RunId nightly-20261128 -ScriptPath '$script:itemsScript' -Root '$($store.Uri)' -Resume -Parameters @{ Count = 20; DelayMs = 50; EffectsPath = '$effects' } 2>`$null
'ERRORS=' + (@(`$Error | ForEach-Object { `$_.FullyQualifiedErrorId }) -join ',')
exit `$LASTEXITCODE
"@
        # Two "servers" (their own local folders) start the task at the same moment.
        $a = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-ha-a') } -Command $task
        $b = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-ha-b') } -Command $task
        try {
            $exits = @((Wait-ChildPwsh $a -TimeoutSec 120), (Wait-ChildPwsh $b -TimeoutSec 120))
        } finally { Stop-ChildPwsh $a; Stop-ChildPwsh $b }
        $outputs = @((Get-ChildPwshOutput $a), (Get-ChildPwshOutput $b))
        ($exits | Sort-Object) | Should -Be @(0, 4) -Because "one runs the slot, the other is refused; they printed:`n$($outputs -join "`n---`n")"
        $loser = $outputs[[array]::IndexOf($exits, 4)]
        $loser | Should -Match 'ERRORS=(RunExists|RunLocked),RunTools.StartRunCommand'
        $done = @(Get-Content $effects)
        $done.Count | Should -Be 20 -Because 'every item ran once, on one machine'
        ($done | Sort-Object -Unique).Count | Should -Be 20
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).runs" | Should -Be '1'
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).events WHERE run_id = 'nightly-20261128' AND type = 'attempt_started'" | Should -Be '1'
    }

    It 'Start-Run -Resume continues the unfinished run of that name in the database' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $failing = Join-Path $TestDrive 'fails-once.ps1'
        $flag = Join-Path $TestDrive 'fail-flag'
        Set-Content $flag 'fail'
        Set-Content $failing @"
Invoke-RunStep one { 'one' }
Invoke-RunStep two { if (Test-Path '$flag') { throw 'not yet' }; 'two' }
"@
        $out = Invoke-InChild @"
`$uri = '$($store.Uri)'
`$first = Start-Run -Name retry -ScriptPath '$failing' -Root `$uri -ErrorAction SilentlyContinue
Remove-Item '$flag'
`$second = Start-Run -Name retry -ScriptPath '$failing' -Root `$uri -Resume
[pscustomobject]@{ First = `$first.Status; Second = `$second.Status; Same = `$first.RunId -eq `$second.RunId; Attempt = `$second.Attempt; Count = @(Get-Run -Root `$uri).Count } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-resume') }
        $out.First | Should -Be 'Failed'
        $out.Second | Should -Be 'Completed'
        $out.Same | Should -BeTrue
        $out.Attempt | Should -Be 2
        $out.Count | Should -Be 1
    }
}

Describe 'Tab completion from a database root' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'completes run ids and names from -Root or RUNTOOLS_ROOT; a fresh schema completes nothing and gets no tables' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $fresh = New-StoreRoot
        $oneStep = Join-Path $TestDrive 'tab-step.ps1'
        Set-Content $oneStep 'Invoke-RunStep a { 1 }'
        $out = Invoke-InChild @"
`$null = Start-Run -Name 'nightly etl' -RunId tab-1 -ScriptPath '$oneStep' -Root '$($store.Uri)'
`$null = Start-Run -Name weekly -RunId tab-2 -ScriptPath '$oneStep' -Root '$($store.Uri)'
function Complete([string] `$line) { @((TabExpansion2 -inputScript `$line -cursorColumn `$line.Length).CompletionMatches.CompletionText) }
[pscustomobject]@{
    Ids = Complete "Resume-Run -Root '$($store.Uri)' -RunId tab"
    Names = Complete "Stop-Run -Root '$($store.Uri)' -Name "
    Narrowed = Complete "Get-RunEvent -Root '$($store.Uri)' -RunId tab-2"
    FromEnvironment = Complete 'Get-Run -Name wee'
    Fresh = Complete "Get-Run -Root '$($fresh.Uri)' -RunId "
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-tab'); RUNTOOLS_ROOT = $store.Uri }
        $out.Ids | Should -Be @('tab-2', 'tab-1') -Because 'the newest id first, as from a folder'
        $out.Names | Should -Be @("'nightly etl'", 'weekly') -Because 'names come in run id order, as from a folder'
        $out.Narrowed | Should -Be 'tab-2'
        $out.FromEnvironment | Should -Be 'weekly'
        $out.Fresh | Should -BeNullOrEmpty
        Invoke-AdminSql "SELECT count(*) FROM information_schema.tables WHERE table_schema = '$($fresh.Schema)'" | Should -Be '0'
    }

    It 'completes nothing, without an error or a prompt, from a server that never answers, a missing password or a malformed root' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot
        $app = ConvertFrom-ConnectionString $env:RUNTOOLS_TEST_PG
        $noPassword = 'postgresql://{0}@{1}:{2}/{3}?schema={4}' -f [uri]::EscapeDataString($app.Username), [uri]::EscapeDataString($app.Host), $app.Port,
            [uri]::EscapeDataString($app.Database), $store.Schema
        # Accepts connections (the kernel completes them) and never answers: without a bound, a connection waits 15 s and more.
        $silent = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $out = Invoke-InChild @"
function Complete([string] `$line) {
    `$clock = [Diagnostics.Stopwatch]::StartNew()
    `$matches = @((TabExpansion2 -inputScript `$line -cursorColumn `$line.Length).CompletionMatches.CompletionText)
    [pscustomobject]@{ Matches = `$matches; Ms = `$clock.ElapsedMilliseconds }
}
`$Error.Clear()
[pscustomobject]@{
    Silent = Complete "Resume-Run -Root 'postgresql://ops:pw@127.0.0.1:$($silent.LocalEndpoint.Port)/jobs' -RunId "
    NoPassword = Complete "Resume-Run -Root '$noPassword' -RunId "
    Malformed = Complete "Resume-Run -Root 'postgresql:jobs' -RunId "
    Errors = `$Error.Count
} | ConvertTo-Json -Compress -Depth 3
"@ -Environment @{ PGPASSWORD = ''; PGPASSFILE = (Join-Path $TestDrive 'no-pgpass') }
        } finally { $silent.Stop() }
        $out.Silent.Matches | Should -BeNullOrEmpty
        $out.Silent.Ms | Should -BeLessThan 10000 -Because 'a Tab gives a database 2 s, where a connection alone would wait 15 s'
        $out.NoPassword.Matches | Should -BeNullOrEmpty
        $out.Malformed.Matches | Should -BeNullOrEmpty
        $out.Errors | Should -Be 0
    }
}
