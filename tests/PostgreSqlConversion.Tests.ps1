<#
    ConvertTo-Run -Root postgresql://...: a legacy directory converted into a run created in a
    PostgreSQL database, through the real module. The directory is left byte for byte as it was
    (no state files, no .bak copies, no audit entry); each legacy format converts to the same
    decisions as in place; Resume-Run of the converted run continues without redoing converted work,
    also once the legacy directory is gone (the files that vouch for converted work are in the
    database). Every command that loads Npgsql runs in a child pwsh (Invoke-InChild,
    tools/PgTestStore.psm1). Skipped, saying so, without the cluster .ci/run starts.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
    $script:haveCluster = Test-PgTestCluster
    $script:fixtures = Join-Path $PSScriptRoot 'fixtures'

    # Fixtures are never converted themselves: each test works on a copy.
    function Copy-Fixture([string] $Relative) {
        $parent = Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8))
        $null = New-Item -ItemType Directory -Force $parent
        Copy-Item (Join-Path $script:fixtures $Relative) $parent -Recurse
        Join-Path $parent (Split-Path $Relative -Leaf)
    }

    # Every entry of a directory (hidden ones too) with a file's SHA-256 and write time: what must not change.
    function Get-Tree([string] $Path) {
        Get-ChildItem -LiteralPath $Path -Recurse -Force | Sort-Object FullName | ForEach-Object {
            $relative = [IO.Path]::GetRelativePath($Path, $_.FullName)
            if ($_.PSIsContainer) { "$relative/" }
            else { '{0} {1} {2:o}' -f $relative, (Get-FileHash -LiteralPath $_.FullName -Algorithm SHA256).Hash, $_.LastWriteTimeUtc }
        }
    }

    function Quote([string] $Text) { "'" + ($Text -replace "'", "''") + "'" }
}

Describe 'ConvertTo-Run into a PostgreSQL database' {
    BeforeEach {
        if (-not $script:haveCluster) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
        }
    }

    It 'converts <Fixture> to the same decisions as in place, and leaves the directory byte for byte as it was' -ForEach @(
        @{ Fixture = 'checkpoint/run_42_10'; Format = 'checkpoint'; Script = $null }
        @{ Fixture = 'trial-manifests/run_exp1'; Format = 'trial_manifests'; Script = $null }
        @{ Fixture = 'frame-generator/20260118_blaze_idle'; Format = 'frame_generator'; Script = $null }
        @{ Fixture = 'generic/nightly'; Format = 'generic'; Script = 'generic/nightly.ps1' }
    ) {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix conv_
        $inPlace = Copy-Fixture $Fixture
        $legacy = Copy-Fixture $Fixture
        $before = Get-Tree $legacy
        $scriptArgument = if ($Script) { '-ScriptPath ' + (Quote (Join-Path $script:fixtures $Script)) } else { '' }
        $out = Invoke-InChild @"
`$folder = ConvertTo-Run $(Quote $inPlace) $scriptArgument -WarningAction SilentlyContinue
`$converted = ConvertTo-Run $(Quote $legacy) -Root $(Quote $store.Uri) $scriptArgument -WarningVariable warned -WarningAction SilentlyContinue
`$listed = Get-Run -Root $(Quote $store.Uri) -RunId `$converted.RunId
`$test = Test-Run -RunId `$converted.RunId -Root $(Quote $store.Uri)
`$migrated = Get-RunEvent -RunId `$converted.RunId -Root $(Quote $store.Uri) -Type run_migrated
[pscustomobject]@{
    Folder = `$folder | Select-Object RunId, Name, Status, Converted, LegacyFormat, ItemsCompleted, StepsCompleted, StepsTotal
    Database = `$converted | Select-Object RunId, Name, Status, Converted, LegacyFormat, ItemsCompleted, StepsCompleted, StepsTotal
    Root = `$converted.Root; PathNull = `$null -eq `$converted.Path; Listed = `$listed.RunId
    FolderWarnings = @(`$migrated.Data.warnings).Count; Warnings = @(`$warned.Message)
    Valid = `$test.IsValid; Problems = @(`$test.Problems | ForEach-Object { "`$_" }); FilesChecked = `$test.FilesChecked
    SourcePath = `$migrated.Data.source_path
} | ConvertTo-Json -Compress -Depth 4
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local') }

        Get-Tree $legacy | Should -Be $before -Because 'a conversion into a database writes nothing in the legacy directory'
        $out.Database.LegacyFormat | Should -Be $Format
        $out.Database.Converted | Should -BeTrue
        $out.Database.Status | Should -Be 'Created'
        foreach ($property in 'RunId', 'Name', 'Status', 'ItemsCompleted', 'StepsCompleted', 'StepsTotal') {
            $out.Database.$property | Should -Be $out.Folder.$property -Because "$property is decided from the same legacy files"
        }
        $out.Root | Should -BeLike "postgresql://*schema=$($store.Schema)"
        $out.Root | Should -Not -BeLike "*$($store.Password)*"
        $out.PathNull | Should -BeTrue
        $out.Listed | Should -Be $out.Database.RunId
        $out.Valid | Should -BeTrue -Because ($out.Problems -join '; ')
        $out.SourcePath | Should -Be $legacy
        @($out.Warnings | Where-Object { $_ -match 'a copy was kept as' }) | Should -BeNullOrEmpty
    }

    It 'a checkpoint run resumes in the database without redoing a converted key; the legacy directory is unchanged after both' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix conv_
        $legacy = Copy-Fixture 'checkpoint/run_42_10'
        $before = Get-Tree $legacy
        $effects = Join-Path $TestDrive 'checkpoint-effects.txt'
        $script = Join-Path $TestDrive 'process.ps1'
        Set-Content $script @"
'order-0001', 'order-0002', 'order-0003', 'order-0004', 'order-0005', 'order-0006' | Invoke-RunItem -Step process -Key { `$_ } { Add-Content -LiteralPath $(Quote $effects) `$_ }
"@
        $out = Invoke-InChild @"
`$converted = ConvertTo-Run $(Quote $legacy) -Root $(Quote $store.Uri) -ScriptPath $(Quote $script) -WarningVariable warned -WarningAction SilentlyContinue
`$resumed = Resume-Run -RunId run_42_10 -Root $(Quote $store.Uri)
`$test = Test-Run -RunId run_42_10 -Root $(Quote $store.Uri)
[pscustomobject]@{
    Converted = `$converted.ItemsCompleted; Status = `$resumed.Status; Items = `$resumed.ItemsCompleted; Exit = `$LASTEXITCODE
    Warnings = @(`$warned.Message); Valid = `$test.IsValid
} | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local') }
        $out.Converted | Should -Be 4
        $out.Status | Should -Be 'Completed'
        $out.Items | Should -Be 6
        $out.Valid | Should -BeTrue
        Get-Content $effects | Should -Be @('order-0005', 'order-0006') -Because 'the four converted keys are completed items'
        ($out.Warnings -join "`n") | Should -Match 'Line 5 of idempotency_keys.jsonl is not a readable key record.*the file was left as it is'
        Get-Tree $legacy | Should -Be $before
    }

    It 'a frame generator run resumes from the database alone: its approved frames are stored there and vouch for their items' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix conv_
        $legacy = Copy-Fixture 'frame-generator/20260118_blaze_idle'
        $before = Get-Tree $legacy
        $effects = Join-Path $TestDrive 'frame-effects.txt'
        $script = Join-Path $TestDrive 'frames.ps1'
        Set-Content $script @"
0..4 | Invoke-RunItem -Step frames -Key { `$_ } { Add-Content -LiteralPath $(Quote $effects) `$_ }
"@
        $first = Invoke-InChild @"
`$converted = ConvertTo-Run $(Quote $legacy) -Root $(Quote $store.Uri) -ScriptPath $(Quote $script) -WarningVariable warned -WarningAction SilentlyContinue
[pscustomobject]@{ Items = `$converted.ItemsCompleted; Warnings = @(`$warned.Message) } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-a') }
        $first.Items | Should -Be 3
        ($first.Warnings -join "`n") | Should -Match 'approved/frame_0003.png does not decode as PNG.*the file was left as it is'
        Get-Tree $legacy | Should -Be $before -Because 'no .bak copy and no audit entry are written into the legacy directory'
        (Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).blobs WHERE run_id = '20260118_blaze_idle' AND name LIKE 'artifacts/approved/%'") | Should -Be '3'

        # "Another machine": the legacy directory is gone and the local folder is a new one.
        Remove-Item -LiteralPath $legacy -Recurse -Force
        $second = Invoke-InChild @"
`$resumed = Resume-Run -RunId 20260118_blaze_idle -Root $(Quote $store.Uri)
`$test = Test-Run -RunId 20260118_blaze_idle -Root $(Quote $store.Uri)
[pscustomobject]@{ Status = `$resumed.Status; Items = `$resumed.ItemsCompleted; Valid = `$test.IsValid; Files = `$test.FilesChecked } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-b') }
        $second.Status | Should -Be 'Completed'
        $second.Items | Should -Be 5
        $second.Valid | Should -BeTrue
        $second.Files | Should -BeGreaterOrEqual 3
        Get-Content $effects | Should -Be @('3', '4') -Because 'frames 0-2 were approved; frame 3 was corrupt and is generated again'
    }

    It 'a conversion killed while it writes leaves nothing in the database and the directory as it was; converting again succeeds' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix conv_
        $legacy = Copy-Fixture 'trial-manifests/run_exp1'
        # A large trial artifact keeps the conversion's one transaction open long enough to kill it inside.
        $model = Join-Path $legacy 'trials/t001/model.bin'
        $bytes = [byte[]]::new(48MB)
        [Random]::new(7).NextBytes($bytes)
        [IO.File]::WriteAllBytes($model, $bytes)
        $manifestPath = Join-Path $legacy 'trials/t001/manifest.json'
        $manifest = Get-Content $manifestPath -Raw | ConvertFrom-Json
        $manifest.artifacts[0].sha256 = (Get-FileHash $model -Algorithm SHA256).Hash.ToLowerInvariant()
        $manifest.artifacts[0].size = $bytes.Length
        $manifest | ConvertTo-Json -Depth 5 | Set-Content $manifestPath
        $before = Get-Tree $legacy

        # The store's tables first, so that the writing transaction seen below is the conversion's.
        $null = Invoke-InChild "[pscustomobject]@{ Listed = @(Get-Run -Root $(Quote $store.Uri)).Count } | ConvertTo-Json -Compress"
        $writing = "SELECT count(*) FROM pg_stat_activity WHERE usename = '$($store.Role)' AND backend_xid IS NOT NULL"
        # Its temp folder in the test's own, so the state folder a kill leaves behind is seen (and cleaned up with it).
        $temp = Join-Path $TestDrive 'temp-k'
        $null = New-Item -ItemType Directory $temp
        $child = Start-ChildPwsh -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-k'); TMPDIR = $temp } -Command @"
`$null = ConvertTo-Run $(Quote $legacy) -Root $(Quote $store.Uri) -WarningAction SilentlyContinue
"@
        try {
            Wait-Until { [int](Invoke-AdminSql $writing) -gt 0 } -TimeoutSec 120 -What 'the conversion to write inside its transaction'
        } finally { Stop-ChildPwsh $child }
        Wait-Until { [int](Invoke-AdminSql $writing) -eq 0 } -What 'the killed conversion''s transaction to end'

        Invoke-AdminSql "SELECT (SELECT count(*) FROM $($store.Schema).events) + (SELECT count(*) FROM $($store.Schema).runs) + (SELECT count(*) FROM $($store.Schema).blobs) + (SELECT count(*) FROM $($store.Schema).blob_contents)" | Should -Be '0'
        Get-Tree $legacy | Should -Be $before
        # What the kill left: the run's state files only (a few KiB), never a copy of the legacy files.
        $left = @(Get-ChildItem -LiteralPath $temp -Recurse -File -Filter * | Where-Object { $_.FullName -like '*runtools-convert-*' })
        ($left | Measure-Object Length -Sum).Sum | Should -BeLessThan 1MB
        $out = Invoke-InChild @"
`$converted = ConvertTo-Run $(Quote $legacy) -Root $(Quote $store.Uri) -WarningAction SilentlyContinue
`$test = Test-Run -RunId run_exp1 -Root $(Quote $store.Uri)
[pscustomobject]@{ Items = `$converted.ItemsCompleted; Valid = `$test.IsValid } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local-k') }
        $out.Items | Should -BeGreaterThan 0
        $out.Valid | Should -BeTrue
        Invoke-AdminSql "SELECT c.size FROM $($store.Schema).blob_contents c JOIN $($store.Schema).blobs b ON b.content_id = c.id WHERE b.name LIKE 'artifacts/%model.bin' AND c.size > 1000" | Should -Be ([string](48MB))
        Get-Tree $legacy | Should -Be $before
    }

    It 'takes the database from RUNTOOLS_ROOT; refuses a run already there, an existing run folder and a folder -Root that is not the parent, changing nothing' {
        if (-not $script:haveCluster) { return }
        $store = New-StoreRoot -Prefix conv_
        $legacy = Copy-Fixture 'checkpoint/run_7_truncated'
        $again = Join-Path $TestDrive 'again'
        $null = New-Item -ItemType Directory $again
        Copy-Item (Join-Path $script:fixtures 'checkpoint/run_7_truncated') $again -Recurse
        $twin = Join-Path $again 'run_7_truncated'
        $native = Copy-Fixture 'checkpoint/run_42_10'
        $null = ConvertTo-Run $native -WarningAction SilentlyContinue # a folder run now
        $before = Get-Tree $legacy
        $beforeTwin = Get-Tree $twin
        $out = Invoke-InChild @"
`$converted = ConvertTo-Run $(Quote $legacy) -WarningAction SilentlyContinue
`$errors = foreach (`$call in { ConvertTo-Run $(Quote $twin) -ErrorAction Stop -WarningAction SilentlyContinue },
        { ConvertTo-Run $(Quote $native) -ErrorAction Stop },
        { ConvertTo-Run $(Quote $twin) -Root $(Quote (Join-Path $TestDrive 'elsewhere')) -ErrorAction Stop -WarningAction SilentlyContinue }) {
    try { & `$call; 'no error' } catch { [pscustomobject]@{ Id = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } }
}
`$whatIf = ConvertTo-Run $(Quote $twin) -Root $(Quote $store.Uri) -WhatIf
[pscustomobject]@{ Root = `$converted.Root; Errors = @(`$errors); WhatIf = `$null -eq `$whatIf } | ConvertTo-Json -Compress -Depth 3
"@ -Environment @{ RUNTOOLS_LOCAL = (Join-Path $TestDrive 'local'); RUNTOOLS_ROOT = $store.Uri }
        $out.Root | Should -BeLike "postgresql://*schema=$($store.Schema)"
        $out.Errors[0].Id | Should -Be 'RunExists,RunTools.ConvertToRunCommand'
        $out.Errors[0].Message | Should -BeLike "*A run 'run_7_truncated' already exists in postgresql://*; '$twin' was not converted*Remove-Run*"
        $out.Errors[0].Message | Should -Not -BeLike "*$($store.Password)*"
        $out.Errors[1].Id | Should -Be 'RunExists,RunTools.ConvertToRunCommand'
        $out.Errors[1].Message | Should -BeLike '*already a RunTools run*Export-RunArchive and Import-RunArchive -Root*'
        $out.Errors[2].Id | Should -Be 'InvalidArgument,RunTools.ConvertToRunCommand'
        $out.Errors[2].Message | Should -BeLike '*conversion into a folder is in place*'
        $out.WhatIf | Should -BeTrue
        Get-Tree $legacy | Should -Be $before
        Get-Tree $twin | Should -Be $beforeTwin
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).runs" | Should -Be '1'
        Invoke-AdminSql "SELECT count(*) FROM $($store.Schema).events WHERE run_id = 'run_7_truncated' AND type = 'run_created'" | Should -Be '1'
    }
}

Describe 'ConvertTo-Run -Root, without a database' {
    It 'stops at a malformed database root, before reading anything' {
        $legacy = Copy-Fixture 'checkpoint/run_7_truncated'
        $before = Get-Tree $legacy
        { ConvertTo-Run $legacy -Root 'postgresql:jobs' -ErrorAction Stop } | Should -Throw -ErrorId 'InvalidArgument*'
        Get-Tree $legacy | Should -Be $before
    }

    It 'takes the directory parent as a folder root and converts in place, as without -Root' {
        $legacy = Copy-Fixture 'checkpoint/run_7_truncated'
        $run = ConvertTo-Run $legacy -Root (Split-Path $legacy) -WarningAction SilentlyContinue
        $run.Path | Should -Be $legacy
        Join-Path $legacy 'journal.jsonl' | Should -Exist
    }
}
