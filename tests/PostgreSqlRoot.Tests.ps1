<#
    A PostgreSQL database as a runs root, through the real module: Get-Run lists it, a malformed or
    unreachable one is a clear error, and nothing of the store or Npgsql loads unless a database root is
    used. Whatever loads Npgsql runs in a child pwsh (tools/ChildPwsh.psm1), so this process, and
    the other test files sharing it, never have it. The database tests use the cluster .ci/run
    starts (RUNTOOLS_TEST_PG, RUNTOOLS_TEST_PG_ADMIN; tools/pg-cluster.sh) and are skipped, saying
    so, only when it is not set.
#>
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force
    $script:oneStep = Join-Path $TestDrive 'one-step.ps1'
    Set-Content $script:oneStep 'Invoke-RunStep a { 1 }'

    # Runs -Command in a child pwsh with the module imported; its last output line is JSON.
    function Invoke-InChild([string] $Command, [hashtable] $Environment = @{}) {
        $result = Invoke-ChildPwsh -Command $Command -ModulePath $env:RUNTOOLS_MODULE_PATH -Environment $Environment -TimeoutSec 180
        if ($result.ExitCode -ne 0) { throw "The child pwsh failed ($($result.ExitCode)):`n$($result.Output)`n$($result.Error)" }
        (($result.Output -split "`n") | Where-Object { $_.Trim() } | Select-Object -Last 1) | ConvertFrom-Json
    }

    $script:loadedStore = "@([AppDomain]::CurrentDomain.GetAssemblies() | ForEach-Object { `$_.GetName().Name } | Where-Object { `$_ -like 'Npgsql*' -or `$_ -like 'RunTools.Store*' })"
}

Describe 'Choosing a database root' {
    It 'never loads the PostgreSQL store or Npgsql on import or for a folder root' {
        $root = Join-Path $TestDrive 'folder-runs'
        $out = Invoke-InChild @"
`$afterImport = $script:loadedStore
`$null = Start-Run -Name nightly -RunId a1 -ScriptPath '$script:oneStep' -Root '$root'
`$listed = @(Get-Run -Root '$root') + @(Get-Run)
[pscustomobject]@{ AfterImport = `$afterImport; Listed = @(`$listed.RunId); Loaded = $script:loadedStore } | ConvertTo-Json -Compress
"@ -Environment @{ RUNTOOLS_ROOT = $root }
        $out.Listed | Should -Be @('a1', 'a1')
        $out.AfterImport | Should -BeNullOrEmpty
        $out.Loaded | Should -BeNullOrEmpty
    }

    It 'writes one StoreUnavailable naming the root without its password, and still lists the other roots' {
        $root = Join-Path $TestDrive 'reachable'
        $null = Start-Run -Name nightly -RunId b1 -ScriptPath $script:oneStep -Root $root
        $out = Invoke-InChild @"
`$listed = Get-Run -Root 'postgresql://ops:sekrit-pw@127.0.0.1:1/jobs', '$root' -ErrorVariable failed -ErrorAction SilentlyContinue
[pscustomobject]@{ Listed = @(`$listed.RunId); Ids = @(`$failed.FullyQualifiedErrorId); Messages = @(`$failed.Exception.Message); Targets = @(`$failed.TargetObject); Loaded = $script:loadedStore } | ConvertTo-Json -Compress
"@
        $out.Listed | Should -Be 'b1'
        $out.Ids | Should -Be 'StoreUnavailable,RunTools.GetRunCommand'
        $out.Messages[0] | Should -BeLike '*postgresql://ops@127.0.0.1:1/jobs`?schema=runtools*'
        $out.Messages[0] | Should -Not -BeLike '*sekrit*'
        $out.Targets | Should -Not -BeLike '*sekrit*'
        # The store was found and loaded from the module's Dependencies/PostgreSql.
        $out.Loaded | Should -Contain 'Npgsql'
        $out.Loaded | Should -Contain 'RunTools.Store.PostgreSql'
    }

    It 'the archive cmdlets take a database root: a malformed one stops them (never a folder of that name), an unreachable one is StoreUnavailable without the password' {
        $archive = Join-Path $TestDrive 'some.zip'
        Set-Content $archive 'not read: the root fails first'
        Push-Location $TestDrive
        try {
            foreach ($call in @(
                    { Export-RunArchive -RunId r1 -Root 'postgresql:jobs' -DestinationPath $TestDrive -ErrorAction Stop }
                    { Import-RunArchive -LiteralPath $archive -Root 'postgresql:jobs' -ErrorAction Stop })) {
                { & $call } | Should -Throw -ErrorId 'InvalidArgument*'
            }
            Get-ChildItem -Force | Where-Object Name -like 'postgres*' | Should -BeNullOrEmpty
        } finally { Pop-Location }

        $out = Invoke-InChild @"
`$uri = 'postgresql://ops:sekrit-pw@127.0.0.1:1/jobs?schema=nightly'
`$failed = foreach (`$call in { Export-RunArchive -RunId r1 -Root `$uri -DestinationPath '$TestDrive' -ErrorAction Stop }, { Import-RunArchive -LiteralPath '$archive' -Root `$uri -ErrorAction Stop }) {
    try { & `$call } catch { `$_ }
}
[pscustomobject]@{ Ids = @(`$failed.FullyQualifiedErrorId); Messages = @(`$failed.Exception.Message) } | ConvertTo-Json -Compress
"@
        $out.Ids | Should -Be @('StoreUnavailable,RunTools.ExportRunArchiveCommand', 'StoreUnavailable,RunTools.ImportRunArchiveCommand')
        $out.Messages | ForEach-Object { $_ | Should -BeLike '*postgresql://ops@127.0.0.1:1/jobs`?schema=nightly*'; $_ | Should -Not -BeLike '*sekrit*' }
    }

    It 'says what is wrong with a malformed database URI, per root in Get-Run' {
        { Start-Run -Name n -ScriptPath $script:oneStep -Root 'postgresql:jobs' } | Should -Throw -ErrorId 'InvalidArgument*'
        $root = Join-Path $TestDrive 'good'
        $null = Start-Run -Name nightly -RunId c1 -ScriptPath $script:oneStep -Root $root
        $listed = Get-Run -Root 'postgresql://ops:sekrit@h:99999/db', $root -ErrorVariable failed -ErrorAction SilentlyContinue
        $listed.RunId | Should -Be 'c1'
        $failed.FullyQualifiedErrorId | Should -Be 'InvalidArgument,RunTools.GetRunCommand'
        $failed.Exception.Message | Should -BeLike "*port '99999'*"
        $failed.Exception.Message | Should -Not -BeLike '*sekrit*'
    }
}

Describe 'A database root the server refuses' {
    It 'is one StoreUnavailable per root that says what to check, never a driver exception, and the other roots are still listed: <Case>' -ForEach @(
        @{ Case = 'no password given'; Hint = '*Check the root''s connection settings*' }
        @{ Case = 'no password given, with an empty password file'; Hint = '*Check the root''s connection settings*' }
        @{ Case = 'a wrong password'; Hint = '*Check the user name and password*' }
        @{ Case = 'a database that does not exist'; Hint = '*Create the database*' }
    ) {
        if (-not $env:RUNTOOLS_TEST_PG -or -not $env:RUNTOOLS_TEST_PG_ADMIN) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
            return
        }

        Import-Module (Join-Path $PSScriptRoot '../tools/PgTestStore.psm1') -Force
        $app = ConvertFrom-ConnectionString $env:RUNTOOLS_TEST_PG
        $server = '{0}:{1}' -f [uri]::EscapeDataString($app.Host), $app.Port
        $uri = switch ($Case) {
            { $_ -like 'no password given*' } { "postgresql://$($app.Username)@$server/$($app.Database)" }
            'a wrong password' { "postgresql://$($app.Username):not-the-password@$server/$($app.Database)" }
            'a database that does not exist' { "postgresql://$($app.Username):$([uri]::EscapeDataString($app.Password))@$server/runtools_no_such_db" }
        }
        $folder = Join-Path $TestDrive "refused-$([guid]::NewGuid().ToString('N').Substring(0, 6))"
        $null = Start-Run -Name nightly -RunId f1 -ScriptPath $script:oneStep -Root $folder
        # No password from a password file either (.ci/run sets no PGPASSWORD): an empty one, and for
        # the missing password a password file that does not exist, which the driver reports as a raw IOException.
        $passFile = Join-Path $TestDrive 'empty-pgpass'
        Set-Content -LiteralPath $passFile -Value $null
        if ($Case -eq 'no password given') { $passFile = Join-Path $TestDrive 'no-such-pgpass' }
        $out = Invoke-InChild @"
`$listed = Get-Run -Root '$uri', '$folder' -ErrorVariable failed -ErrorAction SilentlyContinue
[pscustomobject]@{ Listed = @(`$listed.RunId); Ids = @(`$failed.FullyQualifiedErrorId); Messages = @(`$failed.Exception.Message) } | ConvertTo-Json -Compress
"@ -Environment @{ PGPASSFILE = $passFile }
        $out.Listed | Should -Be 'f1'
        $out.Ids | Should -Be 'StoreUnavailable,RunTools.GetRunCommand'
        $out.Messages[0] | Should -BeLike $Hint
        $out.Messages[0] | Should -Not -BeLike "*$($app.Password)*"
    }
}

Describe 'Get-Run on a PostgreSQL root' {
    It 'lists the database''s runs with their status, filters, the redacted root and no path' {
        if (-not $env:RUNTOOLS_TEST_PG -or -not $env:RUNTOOLS_TEST_PG_ADMIN) {
            Set-ItResult -Skipped -Because 'RUNTOOLS_TEST_PG and RUNTOOLS_TEST_PG_ADMIN are not set (tools/pg-cluster.sh start DIR prints them; .ci/run always sets them)'
            return
        }

        $local = Join-Path $TestDrive 'pg-local'
        # The runs are created with the module's own store assembly (as the store's xUnit contract
        # tests do), so that their rows are exactly what this test needs (one attempt left open).
        # Reflection, because its types are internal. tests/PostgreSqlRuns.Tests.ps1 writes runs with the cmdlets.
        $out = Invoke-InChild @"
`$kv = @{}; foreach (`$p in `$env:RUNTOOLS_TEST_PG -split ';') { if (`$p) { `$k, `$v = `$p -split '=', 2; `$kv[`$k.Trim()] = `$v } }
`$schema = 'pgroot_' + [guid]::NewGuid().ToString('N').Substring(0, 8)
`$uri = 'postgresql://{0}:{1}@{2}:{3}/{4}?schema={5}' -f [uri]::EscapeDataString(`$kv.Username), [uri]::EscapeDataString(`$kv.Password), [uri]::EscapeDataString(`$kv.Host), `$kv.Port, [uri]::EscapeDataString(`$kv.Database), `$schema
`$beforeUse = $script:loadedStore
`$null = Get-Run -Root (`$uri -replace 'schema=[a-z0-9_]+', 'schema=runtools')   # loads the store; runtools is the app role's own schema
`$all = [AppDomain]::CurrentDomain.GetAssemblies()
`$npgsql = `$all | Where-Object { `$_.GetName().Name -eq 'Npgsql' }
`$storeAsm = `$all | Where-Object { `$_.GetName().Name -eq 'RunTools.Store.PostgreSql' }
`$coreAsm = [Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$storeAsm).Assemblies | Where-Object { `$_.GetName().Name -eq 'RunTools.Core' }
function Invoke-Admin([string] `$sql) {
    `$connection = [Activator]::CreateInstance(`$npgsql.GetType('Npgsql.NpgsqlConnection'), [object[]]@(`$env:RUNTOOLS_TEST_PG_ADMIN))
    try { `$connection.Open(); `$command = `$connection.CreateCommand(); `$command.CommandText = `$sql; `$null = `$command.ExecuteNonQuery() } finally { `$connection.Dispose() }
}
Invoke-Admin "CREATE SCHEMA `$schema AUTHORIZATION `$(`$kv.Username)"
`$optionsType = `$storeAsm.GetType('RunTools.Store.PostgreSql.PostgreSqlStoreOptions', `$true)
`$options = [Activator]::CreateInstance(`$optionsType)
`$optionsType.GetProperty('ConnectionString').SetValue(`$options, `$env:RUNTOOLS_TEST_PG)
`$optionsType.GetProperty('Schema').SetValue(`$options, `$schema)
`$optionsType.GetProperty('LeaseDuration').SetValue(`$options, [TimeSpan]::FromMinutes(10))
`$db = `$storeAsm.GetType('RunTools.Store.PostgreSql.PostgreSqlStore', `$true).GetMethod('Open').Invoke(`$null, @(`$options))
`$createType = `$coreAsm.GetType('RunTools.Core.RunCreateOptions', `$true)
function New-DbRun([string] `$id, [string] `$name) {
    `$create = [Activator]::CreateInstance(`$createType)
    `$createType.GetProperty('Name').SetValue(`$create, `$name)
    `$createType.GetProperty('RunId').SetValue(`$create, `$id)
    `$createType.GetProperty('Script').SetValue(`$create, [byte[]](35, 10))
    `$db.GetType().GetMethod('CreateRun').Invoke(`$db, @(`$create, '$local', `$null))
}
`$null = New-DbRun 'r1' 'nightly_load'
`$null = New-DbRun 'r2' 'nightlyXload'
`$attempted = New-DbRun 'r3' 'weekly'
# r3 gets an attempt that stays open: Running while its lease lives, Interrupted once it ran out.
`$runDirectory = `$coreAsm.GetType('RunTools.Core.RunDirectory', `$true).GetConstructors([Reflection.BindingFlags]'Instance,NonPublic')[0].Invoke([object[]]@([string](Join-Path '$local' 'r3'), 'r3'))
`$null = New-Item -ItemType Directory -Force `$runDirectory.Path
`$begin = `$coreAsm.GetType('RunTools.Core.Engine.RunAttempt', `$true).GetMethods([Reflection.BindingFlags]'Static,NonPublic') | Where-Object { `$_.Name -eq 'Begin' -and `$_.GetParameters().Count -eq 3 }
`$attempt = `$begin.Invoke(`$null, @(`$runDirectory, `$attempted, [Activator]::CreateInstance(`$coreAsm.GetType('RunTools.Core.Engine.AttemptOptions', `$true))))
`$listed = @(Get-Run -Root `$uri)
`$live = (Get-Run r3 -Root `$uri).Status
Invoke-Admin "UPDATE `$schema.leases SET expires_at = now() - interval '1 second' WHERE run_id = 'r3'"
`$dead = (Get-Run r3 -Root `$uri).Status
`$env:RUNTOOLS_ROOT = `$uri
`$missing = Get-Run 'r9' -ErrorVariable notFound -ErrorAction SilentlyContinue
`$piped = foreach (`$call in { Get-Run r1 | Export-RunArchive -DestinationPath '$TestDrive' -ErrorAction Stop }, { Get-Run r1 | Get-RunEvent -ErrorAction Stop }) { try { `$null = & `$call; 'no error' } catch { `$_.FullyQualifiedErrorId } }
[pscustomobject]@{
    BeforeUse = `$beforeUse
    Ids = @(`$listed.RunId); Names = @(`$listed.Name); Statuses = @(`$listed.Status)
    Roots = @(`$listed.Root | Select-Object -Unique); PathsNull = @(`$listed | Where-Object { `$null -eq `$_.Path }).Count
    Typed = @(`$listed | Where-Object { `$_ -is [RunTools.RunInfo] }).Count
    Escaped = @((Get-Run -Name 'nightly_load' -Root `$uri).RunId); CaseFree = @((Get-Run -Name 'NIGHTLY*' -Root `$uri).RunId)
    Created = @((Get-Run -Status Created -Root `$uri).RunId); Interrupted = @((Get-Run -Status Interrupted -Root `$uri).RunId)
    Live = "`$live"; Dead = "`$dead"
    Piped = @(`$piped); NotFound = @(`$notFound.FullyQualifiedErrorId); NotFoundMessage = "`$(`$notFound.Exception.Message)"
    Password = `$kv.Password; Schema = `$schema
} | ConvertTo-Json -Compress
`$attempt.Dispose()
"@
        $out.BeforeUse | Should -BeNullOrEmpty
        $out.Ids | Should -Be @('r1', 'r2', 'r3')
        $out.Names | Should -Be @('nightly_load', 'nightlyXload', 'weekly')
        $out.Statuses | Should -Be @('Created', 'Created', 'Running')
        $out.Typed | Should -Be 3
        $out.Roots | Should -HaveCount 1
        $out.Roots[0] | Should -BeLike "postgresql://runtools@*?schema=$($out.Schema)"
        $out.Roots[0] | Should -Not -BeLike "*$($out.Password)*"
        $out.PathsNull | Should -Be 3
        $out.Escaped | Should -Be 'r1'
        $out.CaseFree | Should -Be @('r1', 'r2')
        $out.Created | Should -Be @('r1', 'r2')
        $out.Live | Should -Be 'Running'
        $out.Dead | Should -Be 'Interrupted'
        $out.Interrupted | Should -Be 'r3'
        $out.NotFound | Should -Be 'RunNotFound,RunTools.GetRunCommand'
        # A run listed from the database, piped on: read where it lives, never opened as a folder (Export-RunArchive reads r1 there: it is only Created).
        $out.Piped | Should -Be @('ArchiveRunNotCompleted,RunTools.ExportRunArchiveCommand', 'no error')
        $out.NotFoundMessage | Should -BeLike "*'r9'*postgresql://runtools@*"
        $out.NotFoundMessage | Should -Not -BeLike "*$($out.Password)*"
    }
}
