# Write failures through the module, on a real small file system mounted by the test (as root).
BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force

    # Why this machine cannot mount a test file system, or $null when it can.
    function Get-MountProblem {
        if (-not $IsLinux) { return 'mounting a test file system needs Linux' }
        if ((& id -u) -ne '0') { return "mounting a test file system needs root (running as $(& id -un))" }
        $probe = Join-Path ([IO.Path]::GetTempPath()) ("runtools-probe-" + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $probe
        try {
            $output = & mount -t tmpfs -o size=64k tmpfs $probe 2>&1
            if ($LASTEXITCODE -ne 0) { return "mount is not permitted here: $output" }
            & umount $probe
            return $null
        }
        finally { Remove-Item -LiteralPath $probe -Force }
    }

    $script:mountProblem = Get-MountProblem
    $script:sources = Join-Path $TestDrive 'sources'
    $null = New-Item -ItemType Directory $script:sources
    $random = [Random]::new(11)
    foreach ($i in 1..40) {
        $bytes = [byte[]]::new(256KB)
        $random.NextBytes($bytes)
        [IO.File]::WriteAllBytes((Join-Path $script:sources ('item{0:D2}.bin' -f $i)), $bytes)
    }

    # The issue's job: 40 items, each recording a 256 KiB artifact.
    $script:job = Join-Path $TestDrive 'copy.ps1'
    Set-Content $script:job @'
param([string] $Sources)
Get-ChildItem -LiteralPath $Sources -Filter *.bin | Sort-Object Name | Invoke-RunItem -Step copy -Key { $_.BaseName } {
    $null = Add-RunArtifact -Path $_.FullName
}
'@
}

Describe 'Write failures on a real file system' {
    BeforeEach {
        $mountPoint = $null
        if ($script:mountProblem) { return }
        $mountPoint = Join-Path ([IO.Path]::GetTempPath()) ("runtools-tmpfs-" + [guid]::NewGuid().ToString('N'))
        $null = New-Item -ItemType Directory $mountPoint
        & mount -t tmpfs -o size=4m tmpfs $mountPoint
        $LASTEXITCODE | Should -Be 0
        $root = Join-Path $mountPoint 'runs'
    }

    AfterEach {
        # Always unmount, even when the test failed; bounded retries while a file is still closing.
        if ($mountPoint) {
            foreach ($try in 1..20) {
                & mountpoint -q $mountPoint
                if ($LASTEXITCODE -ne 0) { break }
                & umount $mountPoint 2>$null
                if ($LASTEXITCODE -ne 0) { Start-Sleep -Milliseconds 100 }
            }
            & mountpoint -q $mountPoint
            if ($LASTEXITCODE -eq 0) { & umount -l $mountPoint }
            Remove-Item -LiteralPath $mountPoint -Recurse -Force -ErrorAction SilentlyContinue
        }
    }

    It 'fails a run whose artifacts do not fit, loses none it recorded, and resumes to Completed once space is freed' {
        if ($script:mountProblem) { Set-ItResult -Skipped -Because $script:mountProblem; return }

        $run = Start-Run -Name copy -RunId r1 -ScriptPath $script:job -Root $root -Parameters @{ Sources = $script:sources } `
            -ErrorVariable failures -ErrorAction SilentlyContinue 6>$null 3>$null 2>$null

        # It used to end Completed and valid with 25 artifacts gone.
        $run.Status | Should -Be 'Failed'
        $failure = $failures | Where-Object { $_.FullyQualifiedErrorId -like 'RunFailed*' } | Select-Object -First 1
        $failure | Should -Not -BeNullOrEmpty
        $failure.Exception.InnerException.ErrorId | Should -Be 'WriteFailed'
        $failure.Exception.InnerException.Message | Should -BeLike '*No space left on device*'
        $failure.Exception.InnerException.Message | Should -BeLike "*$mountPoint*"
        $failure.Exception.InnerException.Message | Should -BeLike '*Free disk space*'
        (Get-RunEvent -RunId r1 -Root $root -Type item_failed).Count | Should -Be 1
        $test = Test-Run -RunId r1 -Root $root
        $test.IsValid | Should -BeTrue
        $test.Status | Should -Be 'Failed'
        $done = @(Get-RunEvent -RunId r1 -Root $root -Type item_completed)
        $done.Count | Should -BeGreaterThan 0
        $done.Count | Should -BeLessThan 40
        foreach ($event in $done) {
            (Get-Item -LiteralPath (Join-Path $run.Path "artifacts/$($event.Key).bin")).Length | Should -Be 256KB
        }

        & mount -o remount,size=16m $mountPoint
        $LASTEXITCODE | Should -Be 0
        $resumed = Resume-Run -RunId r1 -Root $root -Parameters @{ Sources = $script:sources } 6>$null 3>$null
        $resumed.Status | Should -Be 'Completed'
        (Test-Run -RunId r1 -Root $root).IsValid | Should -BeTrue
        $completed = @(Get-RunEvent -RunId r1 -Root $root -Type item_completed)
        $completed.Count | Should -Be 40
        @($completed.Key | Sort-Object -Unique).Count | Should -Be 40
        @(Get-ChildItem -LiteralPath (Join-Path $run.Path 'artifacts') -Filter *.bin -Recurse).Count | Should -Be 40
    }

    It 'keeps a failed artifact copy from being swallowed by the script' {
        if ($script:mountProblem) { Set-ItResult -Skipped -Because $script:mountProblem; return }

        $swallow = Join-Path $TestDrive 'swallow.ps1'
        Set-Content $swallow @'
param([string] $Sources)
Get-ChildItem -LiteralPath $Sources -Filter *.bin | Sort-Object Name | Invoke-RunItem -Step copy -Key { $_.BaseName } {
    try { $null = Add-RunArtifact -Path $_.FullName -ErrorAction SilentlyContinue } catch { }
}
Invoke-RunStep after { 'must not run' }
'@
        $run = Start-Run -Name swallow -RunId r2 -ScriptPath $swallow -Root $root -Parameters @{ Sources = $script:sources } `
            -ErrorAction SilentlyContinue 6>$null 3>$null 2>$null
        $run.Status | Should -Be 'Failed'
        Get-RunEvent -RunId r2 -Root $root -Type step_started | Where-Object Step -eq 'after' | Should -BeNullOrEmpty
        (Test-Run -RunId r2 -Root $root).IsValid | Should -BeTrue
    }
}
