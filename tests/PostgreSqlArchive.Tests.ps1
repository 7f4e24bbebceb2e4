<#
    Archives move runs between a folder and a PostgreSQL database, both ways, through the real
    module: Export-RunArchive of a run in a database, Import-RunArchive -Root postgresql://...
    A folder run goes into the database and back with the same journal, files and state (Test-Run
    valid, Compare-Run silent at every stage); a run started in the database resumes from its
    archive as a folder; an import killed midway leaves nothing in the database. Every command that
    loads Npgsql runs in a child pwsh (Invoke-InChild, tools/PgTestStore.psm1), so this process never has it. The
    cluster is the one .ci/run starts (RUNTOOLS_TEST_PG, RUNTOOLS_TEST_PG_ADMIN; tools/pg-cluster.sh);
    without it the tests are skipped, saying so. Each test has a schema of its own.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    # New-StoreRoot, Invoke-AdminSql, Invoke-InChild, Wait-Until.
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    $script:haveCluster = Test-PgTestCluster

    # Every file of a run folder with its SHA-256, by relative path (the lock file is not the run's).
    function Get-RunFiles([string] $Path) {
        $files = [ordered]@{}
        Get-ChildItem -LiteralPath $Path -Recurse -File -Force | Where-Object Name -ne '.lock' | Sort-Object FullName | ForEach-Object {
            $files[[IO.Path]::GetRelativePath($Path, $_.FullName).Replace('\', '/')] = (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash
        }
        $files
    }

    function Get-StoredCount([string] $Schema) {
        Invoke-AdminSql "SELECT (SELECT count(*) FROM $Schema.events) + (SELECT count(*) FROM $Schema.runs) + (SELECT count(*) FROM $Schema.blobs) + (SELECT count(*) FROM $Schema.blob_contents) + (SELECT count(*) FROM $Schema.blob_chunks)"
    }

    $script:artifacts = Join-Path $TestDrive 'artifacts'
    $null = New-Item -ItemType Directory $script:artifacts
    Set-Content (Join-Path $script:artifacts 'report.txt') ('report ' * 1000)
    $script:runScript = Join-Path $TestDrive 'nightly.ps1'
    Set-Content $script:runScript @"
param([int] `$Count = 3)
`$prepared = Invoke-RunStep prepare { "prepared for `$Count" }
1..`$Count | Invoke-RunItem -Step work -Key { "k`$_" } { param(`$i) `$i * 2 }
Invoke-RunStep report { `$null = Add-RunArtifact -Path '$(Join-Path $script:artifacts 'report.txt')'; 'reported' }
"@
}

Describe 'Run archives between a folder and a PostgreSQL database' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'a folder run goes into the database and back with the same journal, files and state, valid at every stage' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix arch_
        $source = Join-Path $TestDrive 'source-runs'
        $target = Join-Path $TestDrive 'target-runs'
        $out = Invoke-InChild @"
`$uri = '$($store.Uri)'
`$original = Start-Run -Name nightly -RunId f1 -ScriptPath '$script:runScript' -Root '$source' -Config @{ region = 'eu' } -Parameters @{ Count = 4 }
`$first = Export-RunArchive -RunId f1 -Root '$source' -DestinationPath '$TestDrive/first'
`$imported = Import-RunArchive -LiteralPath `$first.FullName -Root `$uri
`$inDatabase = Test-Run -RunId f1 -Root `$uri
`$toDatabase = @(Get-Run -Root '$source', `$uri | Compare-Run)
`$second = Get-Run -Root `$uri -RunId f1 | Export-RunArchive -DestinationPath '$TestDrive/second'
`$back = Import-RunArchive -LiteralPath `$second.FullName -Root '$target'
`$final = Test-Run -RunId f1 -Root '$target'
`$toFolder = @(Get-Run -Root '$source', '$target' | Compare-Run)
`$again = try { `$null = Import-RunArchive -LiteralPath `$first.FullName -Root `$uri -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
[pscustomobject]@{
    Original = `$original.Status; ImportedStatus = `$imported.Status; ImportedRoot = `$imported.Root; ImportedPathNull = `$null -eq `$imported.Path
    InDatabase = `$inDatabase.IsValid; InDatabaseFiles = `$inDatabase.FilesChecked; InDatabaseProblems = @(`$inDatabase.Problems | ForEach-Object { "`$_" })
    ToDatabase = `$toDatabase.Count; BackPath = `$back.Path; Final = `$final.IsValid; ToFolder = `$toFolder.Count; Again = `$again
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-a') }
        $out.Original | Should -Be 'Completed'
        $out.ImportedStatus | Should -Be 'Completed'
        $out.ImportedRoot | Should -BeLike "postgresql://$($store.Role)@*schema=$($store.Schema)"
        $out.ImportedPathNull | Should -BeTrue
        $out.InDatabaseProblems | Should -BeNullOrEmpty
        $out.InDatabase | Should -BeTrue
        $out.InDatabaseFiles | Should -BeGreaterOrEqual 3 # step outputs and the artifact, re-read from the database
        $out.ToDatabase | Should -Be 0
        $out.Final | Should -BeTrue
        $out.ToFolder | Should -Be 0
        $out.Again | Should -Be 'RunExists,RunTools.ImportRunArchiveCommand'

        # The event rows are the journal's lines, byte for byte.
        $journal = [IO.File]::ReadAllText((Join-Path $source 'f1/journal.jsonl'))
        $rows = (Invoke-AdminSql "SELECT string_agg(encode(line, 'base64'), ',' ORDER BY seq) FROM $($store.Schema).events WHERE run_id = 'f1'") -join ''
        ($rows -replace "`n", '' -split ',' | ForEach-Object { [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String($_)) + "`n" }) -join '' | Should -BeExactly $journal
        # Back in a folder: every file of the original, the same bytes (the attempt log travelled in the local folder).
        $expected = Get-RunFiles (Join-Path $source 'f1')
        $expected.Keys | Should -Contain 'artifacts/report.txt'
        $expected.Keys | Should -Contain 'logs/attempt-1.log'
        $actual = Get-RunFiles $out.BackPath
        @($actual.Keys) | Should -Be @($expected.Keys)
        foreach ($file in $expected.Keys) { $actual[$file] | Should -Be $expected[$file] -Because $file }
    }

    It 'a run started in the database is exported (with -Force once it failed), imported as a folder and resumed there' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix arch_
        $folder = Join-Path $TestDrive 'resume-runs'
        $flag = Join-Path $TestDrive 'fail-flag'
        $effects = Join-Path $TestDrive 'effects.txt'
        Set-Content $flag 'fail'
        $failing = Join-Path $TestDrive 'fails-once.ps1'
        Set-Content $failing @"
Invoke-RunStep one { Add-Content -LiteralPath '$effects' 'one'; 'one' }
Invoke-RunStep two { if (Test-Path '$flag') { throw 'not yet' }; 'two' }
"@
        $out = Invoke-InChild @"
`$uri = '$($store.Uri)'
`$first = Start-Run -Name retry -RunId d1 -ScriptPath '$failing' -Root `$uri -ErrorAction SilentlyContinue
`$unforced = try { `$null = Export-RunArchive -RunId d1 -Root `$uri -DestinationPath '$TestDrive/d' -ErrorAction Stop; 'no error' } catch { `$_.FullyQualifiedErrorId }
`$archive = Export-RunArchive -RunId d1 -Root `$uri -DestinationPath '$TestDrive/d' -Force
`$entries = @([IO.Compression.ZipFile]::OpenRead(`$archive.FullName).Entries.FullName)
`$inFolder = Import-RunArchive -LiteralPath `$archive.FullName -Root '$folder'
Remove-Item '$flag'
`$resumed = Resume-Run -RunId d1 -Root '$folder'
`$test = Test-Run -RunId d1 -Root '$folder'
[pscustomobject]@{
    First = `$first.Status; Unforced = `$unforced; Entries = `$entries; InFolder = `$inFolder.Status
    Resumed = `$resumed.Status; Attempt = `$resumed.Attempt; Valid = `$test.IsValid; StillInDatabase = (Get-Run -Root `$uri -RunId d1).Status
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-b') }
        $out.First | Should -Be 'Failed'
        $out.Unforced | Should -Be 'ArchiveRunNotCompleted,RunTools.ExportRunArchiveCommand'
        foreach ($entry in 'run.json', 'journal.jsonl', 'config.json', 'script.ps1', 'steps/one/output.clixml', 'logs/attempt-1.log', 'archive_manifest.json') {
            $out.Entries | Should -Contain $entry
        }
        $out.InFolder | Should -Be 'Failed'
        $out.Resumed | Should -Be 'Completed'
        $out.Attempt | Should -Be 2
        $out.Valid | Should -BeTrue
        $out.StillInDatabase | Should -Be 'Failed'
        # Step one's output was replayed from the archived blob, not run again.
        @(Get-Content $effects) | Should -Be @('one')
    }

    It 'an import killed midway leaves nothing in the database, and the same import then succeeds' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix arch_
        # A large artifact keeps the import's one transaction open long enough to kill it inside.
        $big = Join-Path $TestDrive 'big.bin'
        $bytes = [byte[]]::new(48MB)
        [Random]::new(13).NextBytes($bytes)
        [IO.File]::WriteAllBytes($big, $bytes)
        $bigScript = Join-Path $TestDrive 'big.ps1'
        Set-Content $bigScript "`$null = Invoke-RunStep big { `$null = Add-RunArtifact -Path '$big'; 'big' }"
        # The folder side runs in this process: no Npgsql needed.
        $null = Start-Run -Name big -RunId g1 -ScriptPath $bigScript -Root (Join-Path $TestDrive 'big-runs')
        $archive = Export-RunArchive -RunId g1 -Root (Join-Path $TestDrive 'big-runs') -DestinationPath (Join-Path $TestDrive 'big-archive')

        # The store's tables first (a first use creates them): otherwise the writing transaction seen
        # below could be that creation, and the kill would roll the tables back instead of the import.
        $null = Invoke-InChild "[pscustomobject]@{ Listed = @(Get-Run -Root '$($store.Uri)').Count } | ConvertTo-Json -Compress"
        $writing = "SELECT count(*) FROM pg_stat_activity WHERE usename = '$($store.Role)' AND backend_xid IS NOT NULL"
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-c') } -Command @"
`$null = Import-RunArchive -LiteralPath '$($archive.FullName)' -Root '$($store.Uri)'
"@
        try {
            Wait-Until { [int](Invoke-AdminSql $writing) -gt 0 } -TimeoutSec 120 -What 'the import to write inside its transaction'
        } finally { Stop-ChildPwsh $child }
        # The server rolls the transaction back once it sees the connection gone.
        Wait-Until { [int](Invoke-AdminSql $writing) -eq 0 } -What 'the killed import''s transaction to end'

        Get-StoredCount $store.Schema | Should -Be '0'
        $out = Invoke-InChild @"
`$listed = @(Get-Run -Root '$($store.Uri)').Count
`$imported = Import-RunArchive -LiteralPath '$($archive.FullName)' -Root '$($store.Uri)'
`$test = Test-Run -RunId g1 -Root '$($store.Uri)'
[pscustomobject]@{ Listed = `$listed; Status = `$imported.Status; Valid = `$test.IsValid } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-c') }
        $out.Listed | Should -Be 0
        $out.Status | Should -Be 'Completed'
        $out.Valid | Should -BeTrue
        Invoke-AdminSql "SELECT size FROM $($store.Schema).blob_contents c JOIN $($store.Schema).blobs b ON b.content_id = c.id WHERE b.name = 'artifacts/big.bin'" | Should -Be ([string](48MB))
        # Everything that touched the database ran in a child: this process never loaded Npgsql.
        [AppDomain]::CurrentDomain.GetAssemblies().GetName().Name | Should -Not -Contain 'Npgsql'
    }
}
