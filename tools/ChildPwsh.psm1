<#
.SYNOPSIS
    The one way the tests and the example start a child pwsh: the real pwsh process, so that a
    SIGKILL reaches the process that holds a run's lock, and every wait on it bounded in time.
.DESCRIPTION
    The PowerShell .NET tool's `pwsh` is a shim that forks `dotnet <PSHOME>/pwsh.dll`; killing the
    shim leaves the real pwsh (and its lock) alive, and inside it `(Get-Process -Id $PID).Path` is
    `dotnet`. So a child is started as this host running `$PSHOME/pwsh.dll` when this process is
    `dotnet`, or as this process's own executable when it is pwsh itself.
    Output is read by .NET tasks, not Start-Process redirection (which can crash pwsh 7.6 when the
    child is killed). Not shipped with the module.
#>
Set-StrictMode -Version 3

function Get-PwshCommand {
    <# The file to start and the arguments that precede pwsh's own. #>
    $self = [Environment]::ProcessPath
    if ([IO.Path]::GetFileNameWithoutExtension($self) -eq 'pwsh') {
        return [pscustomobject]@{ FilePath = $self; Prefix = @() }
    }

    $dll = Join-Path $PSHOME 'pwsh.dll'
    if (-not (Test-Path -LiteralPath $dll -PathType Leaf)) {
        throw "Cannot start a child pwsh: this process is '$self', not pwsh, and there is no pwsh.dll under `$PSHOME ($PSHOME)."
    }

    [pscustomobject]@{ FilePath = $self; Prefix = @($dll) }
}

function Start-ChildPwsh {
    <#
    .SYNOPSIS
        Starts a child pwsh that runs -Command (after importing -ModulePath, when given) and returns
        a handle for Wait-ChildPwsh, Stop-ChildPwsh and Get-ChildPwshOutput.
    #>
    param(
        [Parameter(Mandatory)] [string] $Command,
        [string] $ModulePath,
        [hashtable] $Environment = @{},
        [string] $WorkingDirectory = (Get-Location -PSProvider FileSystem).ProviderPath
    )
    $prologue = "`$ErrorActionPreference = 'Stop'; `$ProgressPreference = 'SilentlyContinue'; "
    if ($ModulePath) { $prologue += "Import-Module '$($ModulePath -replace "'", "''")'; " }
    $encoded = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($prologue + $Command))

    $pwsh = Get-PwshCommand
    $info = [Diagnostics.ProcessStartInfo]::new($pwsh.FilePath)
    # -OutputFormat Text: with -EncodedCommand and redirected streams pwsh would write errors as CliXml.
    foreach ($argument in @($pwsh.Prefix) + @('-NoProfile', '-NonInteractive', '-OutputFormat', 'Text', '-EncodedCommand', $encoded)) {
        $info.ArgumentList.Add($argument)
    }
    $info.UseShellExecute = $false
    $info.RedirectStandardOutput = $true
    $info.RedirectStandardError = $true
    $info.RedirectStandardInput = $true
    $info.WorkingDirectory = $WorkingDirectory
    $info.Environment['POWERSHELL_TELEMETRY_OPTOUT'] = '1'
    $info.Environment['POWERSHELL_UPDATECHECK'] = 'Off'
    $info.Environment['NO_COLOR'] = '1'   # what the child prints ends up in failure messages and logs
    foreach ($name in $Environment.Keys) { $info.Environment[$name] = [string]$Environment[$name] }

    $process = [Diagnostics.Process]::Start($info)
    $process.StandardInput.Close()
    [pscustomobject]@{
        PSTypeName = 'RunTools.Tests.ChildPwsh'
        Id         = $process.Id
        Process    = $process
        Command    = $Command
        Stdout     = $process.StandardOutput.ReadToEndAsync()
        Stderr     = $process.StandardError.ReadToEndAsync()
    }
}

function Get-ChildPwshOutput {
    <# What the child printed so far (all of it once it has exited), stdout then stderr. #>
    param([Parameter(Mandatory)] $Child)
    $parts = foreach ($task in $Child.Stdout, $Child.Stderr) {
        if ($task.Wait(5000)) { $task.Result } else { '(still open)' }
    }
    ($parts | Where-Object { $_ }) -join "`n"
}

function Wait-ChildPwsh {
    <#
    .SYNOPSIS
        Waits for the child to exit and returns its exit code. After -TimeoutSec the child is
        killed and the wait fails with the command and everything the child printed.
    #>
    param([Parameter(Mandatory)] $Child, [int] $TimeoutSec = 120)
    if (-not $Child.Process.WaitForExit($TimeoutSec * 1000)) {
        try { $Child.Process.Kill($true) } catch { }
        $null = $Child.Process.WaitForExit(10000)
        throw "The child pwsh (pid $($Child.Id)) did not exit within $TimeoutSec s and was killed.`nCommand: $($Child.Command)`nIt printed:`n$(Get-ChildPwshOutput $Child)"
    }
    $Child.Process.WaitForExit() # drains the output tasks
    $Child.Process.ExitCode
}

function Stop-ChildPwsh {
    <# SIGKILL: no cleanup, no finally, the OS releases the child's locks. Returns once it is gone. #>
    param([Parameter(Mandatory)] $Child)
    try { $Child.Process.Kill() } catch [InvalidOperationException] { } # it had already exited
    if (-not $Child.Process.WaitForExit(30000)) {
        throw "The child pwsh (pid $($Child.Id)) was killed but did not exit within 30 s."
    }
}

function Invoke-ChildPwsh {
    <#
    .SYNOPSIS
        Runs -Command in a child pwsh to the end; returns ExitCode and Output (stdout) and Error
        (stderr). Fails with what the child printed when it takes longer than -TimeoutSec.
    #>
    param(
        [Parameter(Mandatory)] [string] $Command,
        [string] $ModulePath,
        [hashtable] $Environment = @{},
        [int] $TimeoutSec = 120
    )
    $child = Start-ChildPwsh -Command $Command -ModulePath $ModulePath -Environment $Environment
    $exitCode = Wait-ChildPwsh -Child $child -TimeoutSec $TimeoutSec
    [pscustomobject]@{ ExitCode = $exitCode; Output = $child.Stdout.Result; Error = $child.Stderr.Result }
}

Export-ModuleMember -Function Get-PwshCommand, Start-ChildPwsh, Get-ChildPwshOutput, Wait-ChildPwsh, Stop-ChildPwsh, Invoke-ChildPwsh
