# One way to select runs on every cmdlet (issue 12). The conventions are generated from the module
# (Get-Command -Module RunTools), so a new cmdlet cannot escape them: which cmdlets take runs, which
# have a RunId, which verbs are destructive all come from the commands' own metadata.
BeforeDiscovery {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $commands = @(Get-Command -Module RunTools | Sort-Object Name)

    function Test-TakesRunInfo($Command) {
        foreach ($p in $Command.Parameters.Values) {
            if ($p.ParameterType -in [RunTools.RunInfo], [RunTools.RunInfo[]] -and ($p.Attributes | Where-Object { $_ -is [Parameter] -and $_.ValueFromPipeline })) { return $true }
        }
        $false
    }

    # Takes runs: accepts RunInfo from the pipeline (Get-Run | <cmdlet>).
    # Selects runs: a RunId that must be given in some set (not Get-Run's optional filter, not Start-Run's new id).
    $selectors = @($commands | Where-Object {
            $_.Parameters['RunId'] -and ($_.Parameters['RunId'].Attributes | Where-Object { $_ -is [Parameter] -and $_.Mandatory })
        } | ForEach-Object { @{ Name = $_.Name } })
    $takesRuns = @($commands | Where-Object { Test-TakesRunInfo $_ } | ForEach-Object { @{ Name = $_.Name; Selects = $_.Name -in $selectors.Name } })
    $counts = @{ TakesRuns = $takesRuns.Count; Selectors = $selectors.Count; Destructive = 0 }
    # A RunId and pipeline input: RunId and Root must bind by property name.
    $withRunId = @($commands | Where-Object {
            $_.Parameters['RunId'] -and ($_.Parameters.Values.Attributes | Where-Object { $_ -is [Parameter] -and ($_.ValueFromPipeline -or $_.ValueFromPipelineByPropertyName) })
        } | ForEach-Object { @{ Name = $_.Name } })
    $destructiveVerbs = 'Remove', 'Stop', 'Resume', 'Export', 'Import', 'ConvertTo', 'Start'
    $destructive = @($commands | Where-Object Verb -In $destructiveVerbs | ForEach-Object { @{ Name = $_.Name } })
    $counts.Destructive = $destructive.Count

    # Each bad selection, in every set, beside one good run: what it is, and the error it must give.
    $badSelections = foreach ($s in $selectors) {
        @{ Name = $s.Name; Set = 'ById'; Case = 'a missing id and a malformed id'; Expected = @('RunNotFound', 'InvalidRunId') }
        @{ Name = $s.Name; Set = 'ByName'; Case = 'an exact name no run has and a malformed pattern'; Expected = @('RunNotFound', 'InvalidWildcardPattern') }
        @{ Name = $s.Name; Set = 'ByPath'; Case = 'a path with no run'; Expected = @('RunNotFound') }
        @{ Name = $s.Name; Set = 'ByInputObject'; Case = 'a RunInfo whose run was deleted'; Expected = @('RunNotFound') }
        @{ Name = $s.Name; Set = 'ByRoot'; Case = 'a root that is a file'; Expected = @('RootNotDirectory') }
    }
}

BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $script:job = Join-Path $TestDrive 'job.ps1'
    Set-Content $script:job 'param($Config) $null = Invoke-RunStep a { 1 }'

    function New-Root { Join-Path $TestDrive ([guid]::NewGuid().ToString('N').Substring(0, 8)) }

    function New-TestRun([string] $Root, [string] $Id, [string] $Name = 'selection', [int] $N = 1) {
        Start-Run -Name $Name -ScriptPath $script:job -Root $Root -RunId $Id -Config @{ n = $N } 6>$null
    }

    function Get-ParameterAttribute($Command, [string] $Parameter, [string] $Set) {
        $Command.Parameters[$Parameter].Attributes | Where-Object { $_ -is [Parameter] -and $_.ParameterSetName -eq $Set }
    }

    # Whatever else a cmdlet needs in the set that was bound (Export-RunArchive's -DestinationPath):
    # each mandatory string parameter gets a fresh folder under $TestDrive. Generated, not listed.
    function Get-ExtraArgument($Command, [string] $Set, [string[]] $Selection) {
        $extra = @{}
        foreach ($p in $Command.Parameters.Values) {
            if ($p.Name -in $Selection) { continue }
            $mandatory = $p.Attributes | Where-Object { $_ -is [Parameter] -and $_.Mandatory -and $_.ParameterSetName -in $Set, '__AllParameterSets' }
            if ($mandatory -and $p.ParameterType -eq [string]) { $extra[$p.Name] = Join-Path $TestDrive ([guid]::NewGuid().ToString('N')) }
        }
        if ($Command.Parameters.ContainsKey('Confirm')) { $extra['Confirm'] = $false }
        $extra
    }

    # Every property value of every output object and every error message, as one text: a cmdlet
    # "processed" a run when its id is in there (RunInfo, RunEvent, RunTestResult, RunDifference, the
    # archive's name, an error about that run), or when the run is gone (Remove-Run).
    function Get-Trace($Output, $Errors) {
        $parts = foreach ($o in @($Output)) {
            foreach ($p in $o.PSObject.Properties) { try { "$($p.Value)" } catch { } }
        }
        (@($parts) + @($Errors | ForEach-Object { "$($_.Exception.Message) $($_.TargetObject)" })) -join "`n"
    }

    function Test-Processed([string] $Trace, $Run) {
        $Trace.Contains($Run.RunId) -or -not (Test-Path -LiteralPath $Run.Path)
    }
}

Describe 'Run selection conventions (generated from Get-Command)' {
    It 'finds the cmdlets it checks in the module''s own metadata' -ForEach $counts {
        # Guards the generated cases below against an empty list (a metadata query that matches nothing).
        $TakesRuns | Should -BeGreaterThan 1
        $Selectors | Should -BeGreaterThan 1
        $Destructive | Should -BeGreaterThan 1
    }

    It '<Name> takes runs either through the four selection sets or as exactly two runs' -ForEach $takesRuns {
        $command = Get-Command $Name
        $twoRuns = $command.Parameters.ContainsKey('ReferenceRunId') -and $command.Parameters.ContainsKey('DifferenceRunId')
        ($twoRuns -or $Selects) | Should -BeTrue -Because "$Name takes RunInfo from the pipeline, so it should select runs like every other cmdlet (ById, ByName, ByInputObject, ByPath)"
    }

    It '<Name> binds RunId and Root by property name' -ForEach $withRunId {
        $command = Get-Command $Name
        foreach ($parameter in 'RunId', 'Root') {
            $command.Parameters.ContainsKey($parameter) | Should -BeTrue -Because "$Name has -RunId, so it needs -Root"
            @($command.Parameters[$parameter].Attributes | Where-Object { $_ -is [Parameter] -and $_.ValueFromPipelineByPropertyName }).Count |
                Should -BeGreaterThan 0 -Because "$Name -$parameter should bind from [pscustomobject]@{ RunId; Root }"
        }
    }

    It '<Name> declares the four selection sets with the same parameters' -ForEach $selectors {
        $command = Get-Command $Name
        $command.DefaultParameterSet | Should -Be 'ById'
        foreach ($set in 'ById', 'ByName', 'ByInputObject', 'ByPath') { $command.ParameterSets.Name | Should -Contain $set }

        # Name, type, the set it is mandatory in, and how it binds: the same on every cmdlet.
        $shape = @(
            @{ Parameter = 'RunId'; Type = [string[]]; Set = 'ById'; Position = 0; Pipeline = $false; ByName = $true }
            @{ Parameter = 'Name'; Type = [string[]]; Set = 'ByName'; Position = [int]::MinValue; Pipeline = $false; ByName = $false }
            @{ Parameter = 'InputObject'; Type = [RunTools.RunInfo[]]; Set = 'ByInputObject'; Position = [int]::MinValue; Pipeline = $true; ByName = $false }
            @{ Parameter = 'Path'; Type = [string[]]; Set = 'ByPath'; Position = [int]::MinValue; Pipeline = $false; ByName = $false }
        )
        foreach ($s in $shape) {
            $p = $command.Parameters[$s.Parameter]
            $p | Should -Not -BeNullOrEmpty -Because "$Name should have -$($s.Parameter)"
            $p.ParameterType | Should -Be $s.Type -Because "$Name -$($s.Parameter)"
            $in = @($p.Attributes | Where-Object { $_ -is [Parameter] -and $_.ParameterSetName -in 'ById', 'ByName', 'ByInputObject', 'ByPath' })
            $in.ParameterSetName | Should -Be $s.Set -Because "$Name -$($s.Parameter) belongs to $($s.Set) only among the selection sets"
            $in[0].Mandatory | Should -BeTrue
            $in[0].Position | Should -Be $s.Position
            $in[0].ValueFromPipeline | Should -Be $s.Pipeline
            $in[0].ValueFromPipelineByPropertyName | Should -Be $s.ByName
        }
        $command.Parameters['Name'].Attributes.Where({ $_ -is [System.Management.Automation.SupportsWildcardsAttribute] }).Count | Should -Be 1
        $command.Parameters['RunId'].Attributes.Where({ $_ -is [System.Management.Automation.ArgumentCompleterAttribute] }).Type | Should -Be ([RunTools.RunIdCompleter])
        $command.Parameters['Name'].Attributes.Where({ $_ -is [System.Management.Automation.ArgumentCompleterAttribute] }).Type | Should -Be ([RunTools.RunNameCompleter])

        $root = $command.Parameters['Root']
        $root.ParameterType | Should -Be ([string])
        $rootSets = @($root.Attributes | Where-Object { $_ -is [Parameter] -and $_.ParameterSetName -in 'ById', 'ByName', 'ByInputObject', 'ByPath' })
        @($rootSets.ParameterSetName | Sort-Object) | Should -Be @('ById', 'ByName')
        $rootSets.ValueFromPipelineByPropertyName | Should -Not -Contain $false
    }

    It '<Name> supports -WhatIf and -Confirm (a destructive verb)' -ForEach $destructive {
        $command = Get-Command $Name
        $command.Parameters.ContainsKey('WhatIf') | Should -BeTrue
        $command.Parameters.ContainsKey('Confirm') | Should -BeTrue
        $attribute = $command.ImplementingType.GetCustomAttributes([System.Management.Automation.CmdletAttribute], $true)[0]
        $attribute.SupportsShouldProcess | Should -BeTrue
    }
}

Describe 'Get-Run | <Name>' -ForEach $takesRuns {
    It 'processes every run Get-Run gives it' {
        $command = Get-Command $Name
        $root = New-Root
        $runs = @((New-TestRun $root 'p1' -N 1), (New-TestRun $root 'p2' -N 2))
        $extra = Get-ExtraArgument $command 'ByInputObject' @('InputObject')
        $output = Get-Run -Root $root | & $Name @extra -ErrorVariable failures -ErrorAction SilentlyContinue -WarningAction SilentlyContinue 3>$null
        @($failures | Where-Object { $_.Exception -is [System.Management.Automation.ParameterBindingException] }) | Should -BeNullOrEmpty
        $trace = Get-Trace $output $failures
        foreach ($run in $runs) { Test-Processed $trace $run | Should -BeTrue -Because "$Name should have acted on $($run.RunId): $trace" }
    }
}

Describe 'One error per bad selection: <Name> <Set>, <Case>' -ForEach $badSelections {
    It 'writes one error for each and still processes the good run' {
        $command = Get-Command $Name
        $root = New-Root
        $good = New-TestRun $root 'keeper' -Name 'kept-name'
        $selection = switch ($Set) {
            'ById' { @{ RunId = @('nope', 'keeper', 'bad id!'); Root = $root } }
            'ByName' { @{ Name = @('no-such-name', 'kept-*', '[', 'nothing-*'); Root = $root } }
            'ByPath' { @{ Path = @((Join-Path $TestDrive 'no-run-here'), $good.Path) } }
            'ByInputObject' {
                $gone = New-TestRun $root 'gone'
                Remove-Item -LiteralPath $gone.Path -Recurse -Force
                @{ InputObject = @($gone, $good) }
            }
            'ByRoot' {
                $file = Join-Path $TestDrive 'a-file'
                Set-Content $file 'not a directory'
                @{ RunId = @('a', 'b'); Root = $file }
            }
        }
        $boundSet = if ($Set -eq 'ByRoot') { 'ById' } else { $Set }
        $extra = Get-ExtraArgument $command $boundSet @($selection.Keys)
        # Verbose too: Stop-Run -Name says there that it left a run that is not running alone.
        $output = & $Name @selection @extra -ErrorVariable failures -ErrorAction SilentlyContinue -WarningAction SilentlyContinue -Verbose 3>$null 4>&1
        $ids = @($failures | ForEach-Object { ($_.FullyQualifiedErrorId -split ',')[0] })
        foreach ($id in $Expected) {
            @($ids | Where-Object { $_ -eq $id }).Count | Should -Be 1 -Because "$Name should write one $id for $Case (got: $($ids -join ', '))"
        }
        # Any other error is about the good run itself (Stop-Run: it is not running), never a second one for a bad selection.
        $others = @($failures | Where-Object { ($_.FullyQualifiedErrorId -split ',')[0] -notin $Expected })
        foreach ($e in $others) { "$($e.Exception.Message) $($e.TargetObject)" | Should -Match 'keeper' -Because "$($e.FullyQualifiedErrorId): $($e.Exception.Message)" }
        if ($Set -ne 'ByRoot') {
            Test-Processed (Get-Trace $output $failures) $good | Should -BeTrue -Because "$Name should go on with the good run"
        }
    }
}

Describe 'Several runs per call' {
    BeforeAll {
        $flag = Join-Path $TestDrive 'fail-flag'
        $script:failing = Join-Path $TestDrive 'failing.ps1'
        Set-Content $script:failing "param(`$Config) Invoke-RunStep a { if (Test-Path -LiteralPath '$flag') { throw 'flag set' }; `$null = 'ok' }"
        function New-FailedRuns([string] $Root, [string[]] $Ids) {
            Set-Content $flag 'fail'
            foreach ($id in $Ids) { $null = Start-Run -Name failing -ScriptPath $script:failing -Root $Root -RunId $id -ErrorAction SilentlyContinue 6>$null }
            Remove-Item $flag
            (Get-Run -Root $Root).Status | Sort-Object -Unique | Should -Be 'Failed'
        }
    }

    It 'Resume-Run -RunId resumes each run in turn, and -Name every run of that name' {
        $root = New-Root
        New-FailedRuns $root 'f1', 'f2', 'f3'
        $resumed = @(Resume-Run -RunId f1, f2 -Root $root)
        $resumed.RunId | Should -Be @('f1', 'f2')
        $resumed.Status | Should -Be @('Completed', 'Completed')
        $LASTEXITCODE | Should -Be 0
        (Get-Run -RunId f3 -Root $root).Status | Should -Be 'Failed'
        (Resume-Run -Name failing -Root $root -WarningAction SilentlyContinue).RunId | Should -Be @('f1', 'f2', 'f3')
        (Get-Run -RunId f3 -Root $root).Status | Should -Be 'Completed'
    }

    It 'Resume-Run -Path resumes each run directory, and a selection error leaves "refused" in $LASTEXITCODE' {
        $root = New-Root
        New-FailedRuns $root 'p1', 'p2'
        $resumed = @(Resume-Run -Path (Join-Path $root p1), (Join-Path $root p2))
        $resumed.Status | Should -Be @('Completed', 'Completed')
        Resume-Run -RunId nope -Root $root -ErrorAction SilentlyContinue
        $LASTEXITCODE | Should -Be 4
    }

    It 'Resume-Run -AsJob starts one job per selected run' {
        $root = New-Root
        New-FailedRuns $root 'j1', 'j2'
        $jobs = @(Resume-Run -RunId j1, j2 -Root $root -AsJob)
        try {
            $jobs.Count | Should -Be 2
            $null = $jobs | Wait-Job -Timeout 120
            $infos = @($jobs | Receive-Job)
            @($infos.RunId | Sort-Object) | Should -Be @('j1', 'j2')
            $infos.Status | Should -Be @('Completed', 'Completed')
        } finally { $jobs | Remove-Job -Force }
    }

    It 'Get-RunEvent gives each run''s events in turn, each naming its run' {
        $root = New-Root
        $a = New-TestRun $root 'ev-a'
        $b = New-TestRun $root 'ev-b'
        $events = @(Get-RunEvent -RunId ev-b, ev-a -Root $root)
        $countB = @(Get-RunEvent -RunId ev-b -Root $root).Count
        $countB | Should -BeGreaterThan 1
        ($events | Select-Object -First $countB).RunId | Sort-Object -Unique | Should -Be 'ev-b'
        ($events | Select-Object -Skip $countB).RunId | Sort-Object -Unique | Should -Be 'ev-a'
        $events[$countB].Sequence | Should -Be 1
        @(Get-RunEvent -Name selection -Root $root -Type run_created).RunId | Should -Be @('ev-a', 'ev-b')
        @(Get-RunEvent -Path $a.Path, $b.Path -Last 1).RunId | Should -Be @('ev-a', 'ev-b')
    }

    It 'Stop-Run, Export-RunArchive and Remove-Run select by path' {
        $root = New-Root
        $run = New-TestRun $root 'bypath'
        Stop-Run -Path $run.Path -ErrorVariable e -ErrorAction SilentlyContinue
        $e.FullyQualifiedErrorId | Should -Be 'RunNotRunning,RunTools.StopRunCommand'
        $archive = Export-RunArchive -Path $run.Path -DestinationPath (Join-Path $TestDrive 'by-path-archives')
        $archive.Name | Should -Be 'bypath.zip'
        Remove-Run -Path $run.Path -Confirm:$false
        $run.Path | Should -Not -Exist
    }

    It 'Remove-Run -Name with -Status removes only the named runs in that state, and -Status alone still filters the root' {
        $root = New-Root
        New-FailedRuns $root 'x1'
        $null = New-TestRun $root 'x2' -Name failing
        $null = New-TestRun $root 'y1' -Name other
        Remove-Run -Name failing -Status Completed -Root $root -Confirm:$false
        @(Get-Run -Root $root).RunId | Should -Be @('x1', 'y1')
        Remove-Run -Status Failed -Root $root -Confirm:$false
        @(Get-Run -Root $root).RunId | Should -Be @('y1')
    }
}
