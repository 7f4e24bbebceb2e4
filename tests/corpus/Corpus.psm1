<#
.SYNOPSIS
    The bad-input corpus for the Pester tier: reads tests/corpus/cases/*.json, builds each case's
    hostile input (the same setup steps as tests/RunTools.Core.Tests/Corpus/CorpusSetup.cs), runs
    its cmdlet call and records the outcome. Test-only; runs inside the child pwsh that
    Invoke-CorpusChild.ps1 starts.
#>
Set-StrictMode -Version 3

$script:corpusFolder = $PSScriptRoot
$script:fixtures = Join-Path (Split-Path $PSScriptRoot) 'fixtures'

function Get-CorpusManifest {
    Get-Content -Raw (Join-Path $script:corpusFolder 'corpus.json') | ConvertFrom-Json
}

function Get-CorpusCase {
    <# Every case, in file then manifest order, with Family and Id added. #>
    foreach ($file in Get-ChildItem (Join-Path $script:corpusFolder 'cases') -Filter *.json | Sort-Object Name) {
        $doc = Get-Content -Raw $file.FullName | ConvertFrom-Json
        foreach ($case in $doc.cases) {
            $family = if ($case.PSObject.Properties['family']) { $case.family } else { $doc.family }
            $case | Add-Member -NotePropertyName Family -NotePropertyValue $family -Force
            $case | Add-Member -NotePropertyName Id -NotePropertyValue "$family/$($case.name)" -Force
            $case
        }
    }
}

function Get-Prop($Object, [string] $Name, $Default = $null) {
    if ($null -ne $Object -and $Object.PSObject.Properties[$Name]) { $Object.$Name } else { $Default }
}

# ------------------------------------------------------------------ setup

$script:templates = @{}
$script:templateRoot = $null

function Initialize-CorpusTemplate([string] $WorkRoot) {
    <#
    The runs cases start from, made through Start-Run like a user would: "completed" (prepare,
    work with items k0 and k1, report with one artifact), "failed" (work throws), "created" (the first
    attempt failed before any step). All have the id r1. A no-op script is made for cases that only need some run.
    #>
    $script:templateRoot = Join-Path $WorkRoot 'templates'
    $null = New-Item -ItemType Directory -Force $script:templateRoot
    $scripts = @{
        completed = @'
Invoke-RunStep prepare { 'prepared' }
Invoke-RunStep work { 'k0', 'k1' | Invoke-RunItem -Key { $_ } { "out$_" } }
Invoke-RunStep report { Set-Content -LiteralPath a.txt 'artifact'; Add-RunArtifact -Path a.txt }
'@
        failed    = @'
Invoke-RunStep prepare { 'prepared' }
Invoke-RunStep work { throw 'boom' }
'@
        created   = "throw 'failed before any step'"
    }
    foreach ($kind in $scripts.Keys) {
        $folder = Join-Path $script:templateRoot $kind
        $null = New-Item -ItemType Directory -Force $folder
        $scriptPath = Join-Path $folder 'script.ps1'
        Set-Content -LiteralPath $scriptPath $scripts[$kind]
        Push-Location $folder
        try { $null = Start-Run corpus $scriptPath -Root (Join-Path $folder 'runs') -RunId r1 -Config @{ model = 'v1' } -ErrorAction SilentlyContinue }
        finally { Pop-Location }
        $script:templates[$kind] = Join-Path $folder 'runs/r1'
    }
    $script:noop = Join-Path $script:templateRoot 'noop.ps1'
    Set-Content -LiteralPath $script:noop "Invoke-RunStep only { 'done' }"
}

function Expand-CorpusText([string] $Text, [string] $Dir) {
    $Text.Replace('{dir}', $Dir).Replace('{fixtures}', $script:fixtures)
}

function Get-CorpusPath([string] $Relative, [string] $Dir) {
    $expanded = Expand-CorpusText $Relative $Dir
    if ([IO.Path]::IsPathRooted($expanded)) { $expanded } else { [IO.Path]::Combine($Dir, $expanded) }
}

function Get-CorpusContent($Step, [string] $Dir) {
    $buffer = [IO.MemoryStream]::new()
    if ((Get-Prop $Step 'bom' $false)) { $buffer.Write([byte[]](0xEF, 0xBB, 0xBF), 0, 3) }
    $parts = if ($Step.PSObject.Properties['parts']) { $Step.parts } else { , $Step }
    foreach ($part in $parts) {
        $unit = if ($part.PSObject.Properties['base64']) { , [Convert]::FromBase64String($part.base64) }
        else { , [Text.Encoding]::UTF8.GetBytes((Expand-CorpusText ([string](Get-Prop $part 'text' '')) $Dir)) }
        if ($null -eq $unit -or $unit.Length -eq 0) { continue }
        $repeat = [int](Get-Prop $part 'repeat' 1)
        for ($i = 0; $i -lt $repeat; $i++) { $buffer.Write($unit, 0, $unit.Length) }
    }
    , $buffer.ToArray()
}

function Assert-Setup([bool] $Condition, [string] $What) {
    if (-not $Condition) { throw "corpus setup: $What" }
}

function Copy-CorpusDirectory([string] $Source, [string] $Destination) {
    Assert-Setup (Test-Path -LiteralPath $Source -PathType Container) "no folder $Source to copy"
    $null = New-Item -ItemType Directory -Force (Split-Path $Destination)
    Copy-Item -LiteralPath $Source -Destination $Destination -Recurse
}

$script:crcTable = $null
function Get-Crc32([byte[]] $Bytes) {
    if (-not $script:crcTable) {
        $script:crcTable = [uint32[]]::new(256)
        for ($n = 0; $n -lt 256; $n++) {
            [uint32] $c = $n
            for ($k = 0; $k -lt 8; $k++) { $c = if ($c -band 1) { [uint32](3988292384 -bxor ($c -shr 1)) } else { $c -shr 1 } }
            $script:crcTable[$n] = $c
        }
    }
    [long] $crc = 4294967295
    foreach ($b in $Bytes) { $crc = [long]$script:crcTable[($crc -bxor $b) -band 255] -bxor ($crc -shr 8) }
    [uint32]($crc -bxor 4294967295)
}

function Get-LineWithCrc([string] $Line) {
    $body = $Line -replace ',"crc":"[0-9a-f]{8}"', ''
    $crc = Get-Crc32 ([Text.Encoding]::UTF8.GetBytes($body))
    $body.Substring(0, $body.Length - 1) + ',"crc":"' + $crc.ToString('x8') + '"}'
}

function Edit-CorpusLines([string] $Target, $Step, [string] $Dir) {
    $text = [IO.File]::ReadAllText($Target)
    $lines = [Collections.Generic.List[string]]::new([string[]]$text.Split("`n"))
    $trailing = $lines.Count -gt 0 -and $lines[$lines.Count - 1].Length -eq 0
    if ($trailing) { $lines.RemoveAt($lines.Count - 1) }
    $index = {
        param([int] $i)
        $at = if ($i -lt 0) { $lines.Count + $i } else { $i }
        Assert-Setup ($at -ge 0 -and $at -lt $lines.Count) "line $i of $Target (it has $($lines.Count))"
        $at
    }
    if ($Step.PSObject.Properties['duplicate']) { $i = & $index $Step.duplicate; $lines.Insert($i + 1, $lines[$i]) }
    if ($Step.PSObject.Properties['swap']) {
        $a = & $index $Step.swap[0]; $b = & $index $Step.swap[1]
        $t = $lines[$a]; $lines[$a] = $lines[$b]; $lines[$b] = $t
    }
    if ($Step.PSObject.Properties['insertAfter']) { $lines.Insert((& $index $Step.insertAfter) + 1, (Expand-CorpusText $Step.text $Dir)) }
    if ($Step.PSObject.Properties['drop']) { $lines.RemoveAt((& $index $Step.drop)) }
    if ($Step.PSObject.Properties['set']) {
        $i = & $index $Step.set
        $regex = [regex]::new($Step.pattern)
        Assert-Setup $regex.IsMatch($lines[$i]) "/$($Step.pattern)/ does not occur in line $i of $Target"
        $lines[$i] = $regex.Replace($lines[$i], (Expand-CorpusText $Step.with $Dir), 1)
    }
    if ((Get-Prop $Step 'recrc' $false)) {
        for ($i = 0; $i -lt $lines.Count; $i++) { $lines[$i] = Get-LineWithCrc $lines[$i] }
    }
    [IO.File]::WriteAllText($Target, ($lines -join "`n") + $(if ($trailing) { "`n" } else { '' }))
}

function Set-ManifestPath($Root, [string] $Path, $Value) {
    $parts = $Path.Split('.')
    $node = $Root
    $parent = $null
    for ($i = 0; $i -lt $parts.Count - 1; $i++) {
        $parent = $node
        $node = if ($node -is [Collections.IList]) { $node[[int]$parts[$i]] } else { $node[$parts[$i]] }
        Assert-Setup ($null -ne $node) "no '$($parts[$i])' in the manifest path $Path"
    }
    $last = $parts[-1]
    if ($node -is [Collections.IList]) {
        # ConvertFrom-Json gives fixed-size arrays: appending replaces the array in its parent.
        if ($last -eq '+') { $parent[$parts[-2]] = @($node) + @(, $Value) } else { $node[[int]$last] = $Value }
    }
    else { $node[$last] = $Value }
}

function Edit-CorpusZip([string] $Target, $Step, [string] $Dir) {
    Add-Type -AssemblyName System.IO.Compression, System.IO.Compression.FileSystem
    $entries = [Collections.Generic.List[object]]::new()
    $zip = [IO.Compression.ZipFile]::OpenRead((Get-CorpusPath $Step.source $Dir))
    try {
        foreach ($entry in $zip.Entries) {
            $stream = $entry.Open(); $copy = [IO.MemoryStream]::new()
            try { $stream.CopyTo($copy) } finally { $stream.Dispose() }
            $entries.Add([pscustomobject]@{ Name = $entry.FullName; Bytes = $copy.ToArray(); Link = $false })
        }
    }
    finally { $zip.Dispose() }
    $find = { param($name) for ($i = 0; $i -lt $entries.Count; $i++) { if ($entries[$i].Name -ceq $name) { return $i } }; -1 }
    foreach ($name in @(Get-Prop $Step 'remove' @())) {
        $i = & $find $name; Assert-Setup ($i -ge 0) "no entry $name to remove"; $entries.RemoveAt($i)
    }
    if ($Step.PSObject.Properties['flip']) {
        $i = & $find $Step.flip; Assert-Setup ($i -ge 0) "no entry $($Step.flip) to flip"
        $entries[$i].Bytes[0] = $entries[$i].Bytes[0] -bxor 0x20
    }
    foreach ($edit in @(Get-Prop $Step 'manifest' @())) {
        $i = & $find 'archive_manifest.json'; Assert-Setup ($i -ge 0) 'no manifest to edit'
        $manifest = [Text.Encoding]::UTF8.GetString($entries[$i].Bytes) | ConvertFrom-Json -AsHashtable
        $value = if ($null -ne $edit.value -and $edit.value -is [psobject] -and $edit.value -isnot [string] -and $edit.value -isnot [ValueType]) { $edit.value | ConvertTo-Json -Compress | ConvertFrom-Json -AsHashtable } else { $edit.value }
        Set-ManifestPath $manifest $edit.path $value
        $entries[$i].Bytes = [Text.Encoding]::UTF8.GetBytes(($manifest | ConvertTo-Json -Depth 20 -Compress))
    }
    foreach ($set in @(Get-Prop $Step 'set' @())) {
        $i = & $find $set.name; Assert-Setup ($i -ge 0) "no entry $($set.name) to set"
        $entries[$i].Bytes = Get-CorpusContent $set $Dir
    }
    foreach ($add in @(Get-Prop $Step 'add' @())) {
        $entries.Add([pscustomobject]@{ Name = $add.name; Bytes = (Get-CorpusContent $add $Dir); Link = [bool](Get-Prop $add 'link' $false) })
    }
    $output = [IO.Compression.ZipFile]::Open($Target, [IO.Compression.ZipArchiveMode]::Create)
    try {
        foreach ($e in $entries) {
            $entry = $output.CreateEntry($e.Name)
            if ($e.Link) { $entry.ExternalAttributes = [int](0xA1FF -shl 16) } # S_IFLNK | 0777
            $stream = $entry.Open()
            try { $stream.Write($e.Bytes, 0, $e.Bytes.Length) } finally { $stream.Dispose() }
        }
    }
    finally { $output.Dispose() }
}

function Invoke-CorpusSetup($Case, [string] $Dir) {
    foreach ($step in @(Get-Prop $Case 'setup' @())) {
        $verb = $step.PSObject.Properties.Name | Select-Object -First 1
        $target = Get-CorpusPath $step.$verb $Dir
        switch ($verb) {
            'write' {
                $null = New-Item -ItemType Directory -Force (Split-Path $target)
                [IO.File]::WriteAllBytes($target, (Get-CorpusContent $step $Dir))
            }
            'append' {
                $bytes = Get-CorpusContent $step $Dir
                $stream = [IO.FileStream]::new($target, [IO.FileMode]::Append)
                try { $stream.Write($bytes, 0, $bytes.Length) } finally { $stream.Dispose() }
            }
            'mkdir' { $null = New-Item -ItemType Directory -Force $target }
            'delete' {
                Assert-Setup (Test-Path -LiteralPath $target) "nothing to delete at $target"
                Remove-Item -LiteralPath $target -Recurse -Force
            }
            'truncate' {
                $length = (Get-Item -LiteralPath $target).Length
                $to = if ($step.PSObject.Properties['to']) { [long]$step.to } else { $length - [long]$step.drop }
                Assert-Setup ($to -ge 0 -and $to -lt $length) "cannot truncate $target ($length bytes) to $to"
                $stream = [IO.FileStream]::new($target, [IO.FileMode]::Open)
                try { $stream.SetLength($to) } finally { $stream.Dispose() }
            }
            'replace' {
                $text = [IO.File]::ReadAllText($target)
                $regex = [regex]::new($step.pattern)
                Assert-Setup $regex.IsMatch($text) "/$($step.pattern)/ does not occur in $target"
                [IO.File]::WriteAllText($target, $regex.Replace($text, (Expand-CorpusText $step.with $Dir), 1))
            }
            'lines' { Edit-CorpusLines $target $step $Dir }
            'forge' {
                $last = ([IO.File]::ReadAllText($target).TrimEnd("`n").Split("`n"))[-1] | ConvertFrom-Json
                $line = '{"seq":' + ([long]$last.seq + 1) + ',"ts":"' + $last.ts.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'") + '","type":"' + $step.type + '"}'
                [IO.File]::AppendAllText($target, (Get-LineWithCrc $line) + "`n")
            }
            'run' {
                $kind = Get-Prop $step 'kind' 'completed'
                Assert-Setup $script:templates.ContainsKey($kind) "unknown template run kind '$kind'"
                Copy-CorpusDirectory $script:templates[$kind] $target
            }
            'copyFixture' { Copy-CorpusDirectory (Join-Path $script:fixtures $step.copyFixture) (Get-CorpusPath $step.to $Dir) }
            'export' {
                $from = Get-CorpusPath $step.from $Dir
                $null = Export-RunArchive -RunId (Split-Path $from -Leaf) -Root (Split-Path $from) -DestinationPath $target -Force:([bool](Get-Prop $step 'force' $false))
            }
            'zipEdit' { Edit-CorpusZip $target $step $Dir }
            'fifo' { & mkfifo $target; Assert-Setup ($LASTEXITCODE -eq 0) "mkfifo $target" }
            'symlink' { $null = [IO.File]::CreateSymbolicLink($target, (Expand-CorpusText $step.target $Dir)) }
            default { throw "corpus setup: unknown setup step '$verb'" }
        }
    }
}

# ------------------------------------------------------------------ operations

function Use-Config($Config) {
    <# Starts a no-op run with -Config and returns what Core's summary would: keys=<top-level keys of config.json>. #>
    $root = Join-Path $Dir '.config-runs'
    $run = Start-Run corpus $script:noop -Root $root -Config $Config
    'keys=' + @((Get-Content -Raw (Join-Path $run.Path 'config.json') | ConvertFrom-Json -AsHashtable).Keys).Count
}

function ConvertTo-UnitScript($Units) {
    <# The run script for a "run.resume" operation's units: steps, items and artifacts in order. #>
    $steps = [ordered]@{}
    foreach ($unit in @($Units | Where-Object { $null -ne $_ })) {
        $name = Expand-CorpusText $unit.step $Dir
        if (-not $steps.Contains($name)) { $steps[$name] = [Collections.Generic.List[string]]::new() }
        $quote = { param($s) "'" + ($s -replace "'", "''") + "'" }
        if ($unit.PSObject.Properties['item']) {
            $steps[$name].Add("    $(& $quote (Expand-CorpusText $unit.item $Dir)) | Invoke-RunItem -Key { `$_ } { }")
        }
        if ($unit.PSObject.Properties['artifact']) {
            $steps[$name].Add("    Add-RunArtifact -Path $(& $quote (Get-CorpusPath $unit.source $Dir)) -Name $(& $quote (Expand-CorpusText $unit.artifact $Dir))")
        }
    }
    ($steps.Keys | ForEach-Object { "Invoke-RunStep $("'" + ($_ -replace "'", "''") + "'") {`n$($steps[$_] -join "`n")`n}" }) -join "`n"
}

function Get-CorpusCommand($Case) {
    <#
    The cmdlet call for a case: its "ps" text, or the module's equivalent of its "core" operation.
    Returns a scriptblock, and whether the expected error surfaces inside a run (Start-Run or
    Resume-Run then writes RunFailed with the cause as the inner exception). $null: no equivalent.
    #>
    if ($Case.PSObject.Properties['ps']) {
        if ($null -eq $Case.ps) { return $null }
        return [pscustomobject]@{ Script = [scriptblock]::Create($Case.ps); InRun = $false }
    }
    $op = $Case.core
    $inRun = $false
    $text = switch ($op.op) {
        'config.file' { 'Use-Config (Get-CorpusPath $op.path $Dir)' }
        'id.run' { '$r = Start-Run corpus $script:noop -Root (Join-Path $Dir ".id-runs") -RunId (Expand-CorpusText $op.value $Dir); if ($r) { $r.RunId }' }
        'id.name' { '$r = Start-Run (Expand-CorpusText $op.value $Dir) $script:noop -Root (Join-Path $Dir ".id-runs"); if ($r) { $r.Name }' }
        'root.open' { '$r = Get-Run -Root (Get-CorpusPath $op.root $Dir) -RunId (Expand-CorpusText $op.id $Dir); if ($r) { "opened=" + $r.RunId }' }
        'root.list' { '$runs = @(Get-Run -Root (Get-CorpusPath $op.root $Dir)); "runs=$($runs.Count) errors="' }
        'root.create' {
            $inRun = $true
            '$declared = if ($op.PSObject.Properties["steps"]) { ($op.steps | ForEach-Object { "Invoke-RunStep ''$_'' { }" }) -join "`n" } else { "# corpus" }
             $script = Join-Path $Dir ".create.ps1"; Set-Content -LiteralPath $script $declared
             $run = Start-Run (Get-Prop $op "name" "corpus") $script -Root (Get-CorpusPath $op.root $Dir) -RunId (Get-Prop $op "id" $null)
             "created=" + $run.RunId'
        }
        'run.state' { $p = '(Get-CorpusPath $op.path $Dir)'; "`$p = $p; `$r = Get-Run -Root (Split-Path `$p) -RunId (Split-Path `$p -Leaf); if (`$r) { 'status=' + `$r.Status }" }
        'run.test' { '$t = Test-Run -Path (Get-CorpusPath $op.path $Dir); if ($t) { "valid=$($t.IsValid)" }' }
        'run.events' { '"events=" + @(Get-RunEvent -Path (Get-CorpusPath $op.path $Dir)).Count' }
        'run.resume' {
            $inRun = $true
            '$script = Join-Path $Dir ".resume.ps1"; Set-Content -LiteralPath $script (ConvertTo-UnitScript (Get-Prop $op "units" @()))
             $r = Resume-Run -Path (Get-CorpusPath $op.path $Dir) -ScriptPath $script -Force
             if ($r) { "status=" + $r.Status }'
        }
        'run.stop' { '$p = Get-CorpusPath $op.path $Dir; Stop-Run -RunId (Split-Path $p -Leaf) -Root (Split-Path $p); "stop requested"' }
        'run.delete' { '$p = Get-CorpusPath $op.path $Dir; Remove-Run -RunId (Split-Path $p -Leaf) -Root (Split-Path $p) -Confirm:$false; "deleted"' }
        'run.compare' { '"differences=" + @(Compare-Run -ReferencePath (Get-CorpusPath $op.path $Dir) -DifferencePath (Get-CorpusPath $op.other $Dir)).Count' }
        'archive.export' {
            '$p = Get-CorpusPath $op.path $Dir
             $a = Export-RunArchive -RunId (Split-Path $p -Leaf) -Root (Split-Path $p) -DestinationPath (Get-CorpusPath $op.destination $Dir) -Force:([bool](Get-Prop $op "force" $false))
             if ($a) { "exported=" + (Split-Path $(if ($a.PSObject.Properties["Path"]) { $a.Path } else { $a.FullName }) -Leaf) }'
        }
        'archive.import' { '$r = Import-RunArchive -LiteralPath (Get-CorpusPath $op.path $Dir) -Root (Get-CorpusPath $op.root $Dir) -Force:([bool](Get-Prop $op "force" $false)) -Confirm:$false; if ($r) { "imported=" + $r.RunId }' }
        'legacy.convert' {
            '$r = ConvertTo-Run -Path (Get-CorpusPath $op.path $Dir) -Format (Get-Prop $op "format" "Auto") -WarningAction SilentlyContinue -Confirm:$false
             if ($r) { "converted=$($r.RunId) format=$($r.SourceFormat)" }'
        }
        default { return $null }
    }
    [pscustomobject]@{ Script = [scriptblock]::Create($text); InRun = $inRun }
}

function Invoke-CorpusCase($Case, [string] $WorkRoot) {
    # $WorkRoot is the case's own folder ($Dir in commands); the parent finds its FIFOs there.
    <#
    Sets up one case in a fresh folder, runs its command with errors collected, and returns the
    outcome: Output (joined text), Errors (each with ErrorId, Inner, Terminating, Type, Message).
    #>
    $Dir = $WorkRoot
    $null = New-Item -ItemType Directory -Force $Dir
    $op = Get-Prop $Case 'core'
    $command = Get-CorpusCommand $Case
    if ($null -eq $command) { return [pscustomobject]@{ Id = $Case.Id; Skipped = 'no cmdlet equivalent' } }
    Invoke-CorpusSetup $Case $Dir

    $errors = [Collections.Generic.List[object]]::new()
    $output = [Collections.Generic.List[string]]::new()
    $describe = {
        param($record, [bool] $terminating)
        $ex = $record.Exception
        $inner = $null
        for ($e = $ex.InnerException; $null -ne $e; $e = $e.InnerException) {
            if ($e.PSObject.Properties['ErrorId']) { $inner = $e.ErrorId; break }
        }
        $isCore = $false
        for ($t = $ex.GetType(); $null -ne $t; $t = $t.BaseType) { if ($t.FullName -eq 'RunTools.Core.RunToolsException') { $isCore = $true } }
        [pscustomobject]@{
            ErrorId     = ([string]$record.FullyQualifiedErrorId).Split(',')[0]
            Inner       = $inner
            Terminating = $terminating
            Type        = $ex.GetType().FullName
            Core        = $isCore
            Message     = $ex.Message
        }
    }
    Push-Location -LiteralPath $Dir
    try {
        $ErrorActionPreference = 'Continue'
        foreach ($item in (& $command.Script 2>&1)) {
            if ($item -is [Management.Automation.ErrorRecord]) { $errors.Add((& $describe $item $false)) }
            elseif ($null -ne $item) { $output.Add([string]$item) }
        }
    }
    catch {
        $errors.Add((& $describe $_ $true))
    }
    finally {
        Pop-Location
    }
    [pscustomobject]@{ Id = $Case.Id; Output = ($output -join "`n"); Errors = @($errors); InRun = $command.InRun }
}

function Test-CorpusOutcome($Case, $Outcome, $Manifest) {
    <# Null when the outcome is the one the case expects in the module; otherwise what went wrong. #>
    if ($Outcome.PSObject.Properties['Crash']) { return $Outcome.Crash }
    $expect = if ($Case.PSObject.Properties['psExpect']) { $Case.psExpect } else { $Case.expect }
    $errors = @($Outcome.Errors)
    $expectedId = Get-Prop $expect 'error'
    if ($expectedId) {
        if ($errors.Count -eq 0) { return "accepted ($($Outcome.Output)) where $expectedId was expected" }
        $first = $errors[0]
        $matched = $first.ErrorId -eq $expectedId -or ($Outcome.InRun -and $first.ErrorId -eq 'RunFailed' -and $first.Inner -eq $expectedId)
        # An expected id need not come from Core: PowerShell's own parameter validation is a stable id too.
        if (-not $first.Core -and -not $matched) { return "unhandled $($first.Type) ($($first.ErrorId)): $($first.Message)" }
        if (-not $matched) { return "ErrorId $($first.ErrorId)$(if ($first.Inner) { " (inner $($first.Inner))" }) where $expectedId was expected: $($first.Message)" }
        $terminating = Get-Prop $expect 'terminating'
        if ($null -ne $terminating -and [bool]$terminating -ne $first.Terminating) {
            return "$expectedId was $(if ($first.Terminating) { 'terminating' } else { 'a non-terminating WriteError' }) where the opposite was expected"
        }
        if ($first.Message -notmatch $Manifest.nextStepPattern) { return "the $expectedId message has no next step: $($first.Message)" }
        return $null
    }
    $accept = [string]$expect.accept
    if ($errors.Count -gt 0) {
        $first = $errors[0]
        if (-not $first.Core) { return "unhandled $($first.Type) ($($first.ErrorId)): $($first.Message)" }
        return "rejected with $($first.ErrorId)$(if ($first.Inner) { " (inner $($first.Inner))" }) where '$accept' was expected: $($first.Message)"
    }
    if ($Outcome.Output -cne $accept) { return "accepted with '$($Outcome.Output)' where '$accept' was expected" }
    $null
}

Export-ModuleMember -Function Get-CorpusManifest, Get-CorpusCase, Get-CorpusCommand, Get-Prop, Initialize-CorpusTemplate, Invoke-CorpusCase, Test-CorpusOutcome, Get-CorpusPath, Expand-CorpusText, Use-Config
