BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:itemsScript = Join-Path $PSScriptRoot 'scripts/items.ps1'

    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

    function New-CompletedRun([string] $Root, [string] $Name = 'arch', [int] $Count = 3) {
        Start-Run -Name $Name -ScriptPath $script:itemsScript -Root $Root -Parameters @{ EffectsPath = (Join-Path $TestDrive "$Name-$([guid]::NewGuid()).txt"); Count = $Count }
    }

    # Files of a run directory, relative, with their SHA-256 (the lock file is no content).
    function Get-RunContent([string] $Path) {
        Get-ChildItem $Path -Recurse -File -Force | Where-Object Name -NE '.lock' | ForEach-Object {
            '{0} {1}' -f [IO.Path]::GetRelativePath($Path, $_.FullName).Replace('\', '/'), (Get-FileHash $_.FullName -Algorithm SHA256).Hash
        } | Sort-Object
    }
}

Describe 'Export-RunArchive' {
    It 'exports every piped run to a zip named by its run id in the folder and returns FileInfo' {
        $root = New-Root
        $runs = @(New-CompletedRun $root 'one'; New-CompletedRun $root 'two'; New-CompletedRun $root 'three')
        $out = Join-Path $TestDrive 'pipeline-out'
        $files = @(Get-Run -Root $root | Export-RunArchive -DestinationPath $out)
        $files.Count | Should -Be 3
        $files | ForEach-Object { $_ | Should -BeOfType ([System.IO.FileInfo]) }
        ($files.Name | Sort-Object) | Should -Be (($runs.RunId | Sort-Object) | ForEach-Object { "$_.zip" })
        (Get-ChildItem $out -Force).Count | Should -Be 3
        $zip = [IO.Compression.ZipFile]::OpenRead($files[0].FullName)
        try { $zip.Entries.FullName | Should -Contain 'archive_manifest.json' } finally { $zip.Dispose() }
    }

    It 'writes nothing with -WhatIf' {
        $root = New-Root
        New-CompletedRun $root | Out-Null
        $out = Join-Path $TestDrive 'whatif-out'
        $result = Get-Run -Root $root | Export-RunArchive -DestinationPath $out -WhatIf
        $result | Should -BeNullOrEmpty
        Test-Path $out | Should -BeFalse
    }

    It 'writes a file path as given, and overwrites it only with -Force' {
        $root = New-Root
        $run = New-CompletedRun $root
        $file = Join-Path $TestDrive 'named.zip'
        (Export-RunArchive -RunId $run.RunId -Root $root -DestinationPath $file).FullName | Should -Be $file
        { Export-RunArchive -RunId $run.RunId -Root $root -DestinationPath $file -ErrorAction Stop } | Should -Throw -ErrorId 'ArchiveExists*'
        (Export-RunArchive -RunId $run.RunId -Root $root -DestinationPath $file -Force).FullName | Should -Be $file
        (Get-ChildItem $TestDrive -Filter '.named.zip*' -Force) | Should -BeNullOrEmpty
    }

    It 'refuses a run that is not Completed unless -Force, and one bad run does not stop the pipeline' {
        $root = New-Root
        $good = New-CompletedRun $root 'good'
        $failing = Join-Path $TestDrive 'failing.ps1'
        Set-Content $failing 'Invoke-RunStep boom { throw "on purpose" }'
        $failed = Start-Run -Name bad -ScriptPath $failing -Root $root -ErrorAction SilentlyContinue
        $failed.Status | Should -Be 'Failed'
        $out = Join-Path $TestDrive 'mixed-out'

        $files = @(Export-RunArchive -RunId $failed.RunId, 'no-such-run', $good.RunId -Root $root -DestinationPath $out -ErrorVariable problems -ErrorAction SilentlyContinue)
        $files.Name | Should -Be "$($good.RunId).zip"
        $problems.Count | Should -Be 2
        $problems[0].FullyQualifiedErrorId | Should -BeLike 'ArchiveRunNotCompleted*' -Because 'the failed run comes first'
        $problems[1].FullyQualifiedErrorId | Should -BeLike 'RunNotFound*'

        $forced = Export-RunArchive -InputObject $failed -DestinationPath $out -Force
        $zip = [IO.Compression.ZipFile]::OpenRead($forced.FullName)
        try {
            $reader = [IO.StreamReader]::new($zip.GetEntry('archive_manifest.json').Open())
            $manifest = $reader.ReadToEnd() | ConvertFrom-Json
            $reader.Dispose()
        }
        finally { $zip.Dispose() }
        $manifest.forced | Should -BeTrue
        $manifest.run.status | Should -Be 'failed'
    }

    It 'exports runs selected by -Name' {
        $root = New-Root
        New-CompletedRun $root 'nightly' | Out-Null
        New-CompletedRun $root 'other' | Out-Null
        $files = @(Export-RunArchive -Name 'night*' -Root $root -DestinationPath (Join-Path $TestDrive 'by-name'))
        $files.Count | Should -Be 1
        $files[0].Name | Should -BeLike '*-nightly-*.zip'
    }
}

Describe 'Import-RunArchive' {
    It 'restores the run byte for byte, returns RunInfo, and Get-Run sees it' {
        $root = New-Root
        $run = New-CompletedRun $root 'restore' 5
        $archive = Export-RunArchive -InputObject $run -DestinationPath (Join-Path $TestDrive 'restore-out')
        $target = New-Root
        $restored = $archive | Import-RunArchive -Root $target
        $restored | Should -BeOfType ([RunTools.RunInfo])
        $restored.RunId | Should -Be $run.RunId
        $restored.Status | Should -Be 'Completed'
        $restored.ItemsCompleted | Should -Be 5
        $restored.Root | Should -Be $target
        (Get-Run -Root $target).RunId | Should -Be $run.RunId
        Get-RunContent $restored.Path | Should -Be (Get-RunContent $run.Path)

        # The round trip ends valid and with no difference from the original.
        (Test-Run -InputObject $restored).IsValid | Should -BeTrue
        (Test-Run -InputObject $restored).Problems | Should -BeNullOrEmpty
        Compare-Run -ReferencePath $run.Path -DifferencePath $restored.Path | Should -BeNullOrEmpty
        $run, $restored | Compare-Run -IncludeEqual | Where-Object SideIndicator -ne '==' | Should -BeNullOrEmpty
    }

    It 'resolves wildcards in -Path, refuses an existing run, and replaces it with -Force' {
        $root = New-Root
        $out = Join-Path $TestDrive 'wild-out'
        New-CompletedRun $root 'w1' | Out-Null
        New-CompletedRun $root 'w2' | Out-Null
        Get-Run -Root $root | Export-RunArchive -DestinationPath $out | Out-Null
        $target = New-Root
        @(Import-RunArchive -Path (Join-Path $out '*.zip') -Root $target).Count | Should -Be 2

        $first = (Get-ChildItem $out -Filter *.zip)[0]
        { Import-RunArchive -LiteralPath $first.FullName -Root $target -ErrorAction Stop } | Should -Throw -ErrorId 'RunExists*'
        $note = Join-Path $target ($first.BaseName) 'note.txt'
        Set-Content $note 'local'
        Import-RunArchive -LiteralPath $first.FullName -Root $target -WhatIf
        Test-Path $note | Should -BeTrue
        (Import-RunArchive -LiteralPath $first.FullName -Root $target -Force).RunId | Should -Be $first.BaseName
        Test-Path $note | Should -BeFalse
    }

    It 'rejects a hostile archive with its ErrorId and leaves the root unchanged' {
        $root = New-Root
        $run = New-CompletedRun $root 'hostile'
        $good = Export-RunArchive -InputObject $run -DestinationPath (Join-Path $TestDrive 'hostile-out')
        $bad = Join-Path $TestDrive 'slip.zip'
        Copy-Item $good.FullName $bad
        $zip = [IO.Compression.ZipFile]::Open($bad, 'Update')
        try {
            $writer = [IO.StreamWriter]::new($zip.CreateEntry('../escaped.txt').Open())
            $writer.Write('outside')
            $writer.Dispose()
        }
        finally { $zip.Dispose() }

        $target = New-Root
        New-Item -ItemType Directory $target | Out-Null
        Set-Content (Join-Path $target 'keep.txt') 'untouched'
        $before = Get-ChildItem $target -Recurse -Force | ForEach-Object FullName
        Import-RunArchive -Path $bad -Root $target -ErrorVariable problems -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        $problems.Count | Should -Be 1
        $problems[0].FullyQualifiedErrorId | Should -BeLike 'ArchiveUnsafePath,*'
        $problems[0].Exception.Message | Should -Match 'escaped.txt'
        Get-ChildItem $target -Recurse -Force | ForEach-Object FullName | Should -Be $before
        Test-Path (Join-Path $TestDrive 'escaped.txt') | Should -BeFalse
    }

    It 'reports a path that matches no archive' {
        { Import-RunArchive -Path (Join-Path $TestDrive 'none-*.zip') -Root (New-Root) -ErrorAction Stop } | Should -Throw -ErrorId 'ArchiveNotFound*'
    }
}
