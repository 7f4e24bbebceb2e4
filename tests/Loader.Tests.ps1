BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    Import-Module (Join-Path $PSScriptRoot '../tools/ChildPwsh.psm1') -Force

    # One completed run for the children to find.
    $script:root = Join-Path $TestDrive 'runs'
    $script:stepScript = Join-Path $TestDrive 'one-step.ps1'
    Set-Content $script:stepScript 'Invoke-RunStep a { $null = 1 }'
    $null = Start-Run -Name loaded -RunId r1 -ScriptPath $script:stepScript -Root $script:root
    $script:cmdlets = [string[]](Get-Module RunTools).ExportedCmdlets.Keys
    [Array]::Sort($script:cmdlets, [StringComparer]::Ordinal)
    $script:quotedModule = $env:RUNTOOLS_MODULE_PATH -replace "'", "''"
    $script:quotedRoot = $script:root -replace "'", "''"
}

Describe 'Loading the module in parallel runspaces' {
    It 'gives each of 8 runspaces importing at once the cmdlets and a working Get-Run, in 20 fresh processes' {
        $script:cmdlets | Should -Contain 'Get-Run'
        # The loader initializes once per process, so each trial is a new pwsh. A barrier releases the
        # 8 imports together; each runspace prints its number, its cmdlets and what Get-Run found.
        # (No Sort-Object in the runspaces: autoloading Microsoft.PowerShell.Utility 160 times is slow.)
        $command = @"
`$barrier = [Threading.Barrier]::new(8)
1..8 | ForEach-Object -ThrottleLimit 8 -Parallel {
    `$runspace = `$_
    `$null = (`$using:barrier).SignalAndWait(30000)
    try {
        Import-Module '$script:quotedModule' -ErrorAction Stop
        `$names = [string[]](Get-Module RunTools).ExportedCmdlets.Keys
        [Array]::Sort(`$names, [StringComparer]::Ordinal)
        `$runs = @(Get-Run -Root '$script:quotedRoot' -ErrorAction Stop)
        "`$runspace|`$(`$names -join ',')|`$(`$runs.Count) `$(`$runs[0].RunId) `$(`$runs[0].Status)"
    }
    catch { "`$runspace|FAILED|`$(`$_.Exception.Message)" }
}
"@
        $expected = (1..8 | ForEach-Object { "$_|$($script:cmdlets -join ',')|1 r1 Completed" }) -join "`n"

        # Each child costs about 3 s of CPU, mostly pwsh's own start: 4 at a time keep both cores busy
        # (FIFO window: the next starts when the oldest is done).
        $failures = [Collections.Generic.List[string]]::new()
        $running = [Collections.Generic.Queue[object]]::new()
        $started = 0
        while ($started -lt 20 -or $running.Count -gt 0) {
            if ($started -lt 20 -and $running.Count -lt 4) {
                $running.Enqueue((Start-ChildPwsh -Command $command))
                $started++
                continue
            }
            $child = $running.Dequeue()
            $exitCode = Wait-ChildPwsh -Child $child -TimeoutSec 90
            $lines = @($child.Stdout.Result -split '\r?\n' | Where-Object { $_ } | Sort-Object) -join "`n"
            if ($exitCode -ne 0 -or $lines -ne $expected) {
                $failures.Add("pid $($child.Id), exit code $exitCode`n$(Get-ChildPwshOutput $child)")
            }
        }
        $failures | Should -BeNullOrEmpty -Because "every runspace of every process must load the module; $($failures.Count) of 20 processes had one that did not"
    }
}

Describe 'The resolve handler' {
    It "does not answer another assembly's requests for RunTools' private assemblies" {
        # Three requesters that are not RunTools ask for YamlDotNet and RunTools.Core before and after
        # RunTools loads its private copies: a cmdlet assembly (Add-Type -AssemblyName is
        # Microsoft.PowerShell.Commands.Utility asking), a script (a dynamic method asking) and no one
        # (RequestingAssembly null). The host has neither, so the answer must stay 'not found'; a
        # handler that answered everyone would hand over the copies in RunTools' load context.
        $command = @"
function Ask([string] `$name) {
    `$answers = foreach (`$requester in 'cmdlet', 'script', 'anonymous') {
        try {
            `$assembly = switch (`$requester) {
                'cmdlet' { (Add-Type -AssemblyName `$name -PassThru -ErrorAction Stop)[0].Assembly }
                'script' { [Reflection.Assembly]::Load(`$name) }
                'anonymous' { [Runtime.Loader.AssemblyLoadContext]::Default.LoadFromAssemblyName([Reflection.AssemblyName]::new(`$name)) }
            }
            "from `$([Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$assembly).Name)"
        }
        catch { 'not found' }
    }
    `$answers -join ','
}
"before: `$(Ask YamlDotNet) / `$(Ask RunTools.Core)"
Import-Module '$script:quotedModule'
`$runs = @(Get-Run -Root '$script:quotedRoot').Count
`$contexts = @([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -eq 'YamlDotNet' } | ForEach-Object { [Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name }) -join ','
"after: `$(Ask YamlDotNet) / `$(Ask RunTools.Core)"
"runs: `$runs; YamlDotNet in: `$contexts"
"@
        $child = Invoke-ChildPwsh -Command $command -TimeoutSec 60
        $child.ExitCode | Should -Be 0 -Because $child.Error
        $lines = $child.Output.Trim() -split '\r?\n'
        # The premise: RunTools' own requests are answered, and it holds a YamlDotNet that could be handed out.
        $lines[2] | Should -Be 'runs: 1; YamlDotNet in: RunTools'
        $lines[0] | Should -Be 'before: not found,not found,not found / not found,not found,not found'
        $lines[1] | Should -Be 'after: not found,not found,not found / not found,not found,not found'
    }
}
