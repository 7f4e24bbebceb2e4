# Help for every exported cmdlet: synopsis, description, parameter descriptions and examples come from the
# MAML in module/en-US (built from docs/cmdlets by `./build.ps1 -Task Docs`), and the committed MAML is current.
# PlatyPS is not available everywhere (not in CI), so "current" is checked by reading both sides here: the
# markdown pages and the MAML must say the same thing, up to whitespace and the rewrite the Docs task applies.
BeforeDiscovery {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $commands = @(Get-Command -Module RunTools | Sort-Object Name | ForEach-Object { @{ Name = $_.Name } })

    # Each case breaks one thing in a copy of the docs or the MAML; the comparer must report it. Markdown
    # mutations take and return the text of docs/cmdlets/Start-Run.md; MAML mutations edit Start-Run's
    # <command:command> node in place.
    $drift = @(
        @{ Case = 'a parameter description in the MAML'; Target = 'Maml'; Expect = "parameter -Root: description"
            Mutate = { param($c, $ns) $p = $c.SelectSingleNode("command:parameters/command:parameter[maml:name='Root']/maml:description/maml:para", $ns); $p.InnerText = $p.InnerText.Replace('holds the run directories', 'holds run directories') }
        }
        @{ Case = 'a parameter description in the markdown'; Target = 'Markdown'; Expect = "parameter -Step: description"
            Mutate = { param($t) $t.Replace('Runs only the named steps in this attempt', 'Runs only the named step in this attempt') }
        }
        @{ Case = 'a parameter missing from the MAML'; Target = 'Maml'; Expect = "parameters differ: .*-ToStep"
            Mutate = { param($c, $ns) $p = $c.SelectSingleNode("command:parameters/command:parameter[maml:name='ToStep']", $ns); $null = $p.ParentNode.RemoveChild($p) }
        }
        @{ Case = 'a parameter renamed in the markdown'; Target = 'Markdown'; Expect = "parameters differ: .*-UntilStep"
            Mutate = { param($t) $t.Replace('### -ToStep', '### -UntilStep') }
        }
        @{ Case = 'the synopsis'; Target = 'Markdown'; Expect = 'synopsis'
            Mutate = { param($t) $t.Replace('checkpointing its steps and items', 'checkpointing its steps') }
        }
        @{ Case = 'a description paragraph'; Target = 'Maml'; Expect = '^Start-Run: description differs'
            Mutate = { param($c, $ns) $p = $c.SelectSingleNode('maml:description/maml:para', $ns); $p.InnerText = $p.InnerText.Replace("`n`nInside the script, ", ' ') }
        }
        @{ Case = 'a U+0080 separator paragraph left in the MAML'; Target = 'Maml'; Expect = '^Start-Run: description differs'
            Mutate = { param($c, $ns) $d = $c.SelectSingleNode('maml:description', $ns); $p = $d.SelectSingleNode('maml:para', $ns).CloneNode($false); $p.InnerText = [string][char]0x80; $null = $d.AppendChild($p) }
        }
        @{ Case = 'example code'; Target = 'Markdown'; Expect = 'example 3: code'
            Mutate = { param($t) $t.Replace('-Config ./nightly.yaml -Step extract', '-Config ./nightly.yaml -Step upload') }
        }
        @{ Case = 'example code left in maml:introduction'; Target = 'Maml'; Expect = 'example 1: code'
            Mutate = { param($c, $ns) $e = $c.SelectSingleNode('command:examples/command:example', $ns); $code = $e.SelectSingleNode('dev:code', $ns); $i = $e.SelectSingleNode('maml:introduction', $ns); $p = $c.OwnerDocument.CreateElement('maml', 'para', $ns.LookupNamespace('maml')); $p.InnerText = "``````powershell`n$($code.InnerText)`n``````"; $null = $i.AppendChild($p); $code.InnerText = '' }
        }
        @{ Case = 'example remarks'; Target = 'Maml'; Expect = 'example 2: remarks'
            Mutate = { param($c, $ns) $p = $c.SelectSingleNode('command:examples/command:example[2]/dev:remarks/maml:para', $ns); $p.InnerText = $p.InnerText.Replace('exits with 1', 'exits with 2') }
        }
        @{ Case = 'an example title'; Target = 'Markdown'; Expect = 'example 4: title'
            Mutate = { param($t) $t.Replace('### Example 4: Pass a hashtable config', '### Example 4: Pass a hashtable as config') }
        }
        @{ Case = 'an example missing from the MAML'; Target = 'Maml'; Expect = 'examples: \d+ in docs, \d+ in MAML'
            Mutate = { param($c, $ns) $e = $c.SelectSingleNode('command:examples/command:example[3]', $ns); $null = $e.ParentNode.RemoveChild($e) }
        }
        @{ Case = 'an input type'; Target = 'Maml'; Expect = 'input types'
            Mutate = { param($c, $ns) $c.SelectSingleNode('command:inputTypes/command:inputType/dev:type/maml:name', $ns).InnerText = 'System.String' }
        }
        @{ Case = 'an output type'; Target = 'Markdown'; Expect = 'output types'
            Mutate = { param($t) $t.Replace('### RunTools.RunInfo', '### RunTools.RunState') }
        }
        @{ Case = 'a command with no MAML entry'; Target = 'Maml'; Expect = 'Start-Run: no <command:command> in the MAML'
            Mutate = { param($c, $ns) $null = $c.ParentNode.RemoveChild($c) }
        }
    )
}

BeforeAll {
    Import-Module $env:RUNTOOLS_MODULE_PATH -Force
    $repoRoot = Split-Path $PSScriptRoot -Parent
    $docsFolder = Join-Path $repoRoot 'docs/cmdlets'
    $mamlPath = Join-Path $repoRoot 'module/en-US/RunTools.dll-Help.xml'
    $commonParameters = [System.Management.Automation.PSCmdlet]::CommonParameters
    function Get-Text($Value) { (@($Value) | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n" }

    # Prose is compared with runs of whitespace collapsed (MAML indentation and markdown line breaks differ);
    # code keeps its lines, up to line endings, trailing blanks and blank lines around it.
    function Format-Prose([string] $Text) { ($Text -replace '\s+', ' ').Trim() }
    function Format-Code([string] $Text) {
        (($Text -replace '\r\n?', "`n") -split "`n" | ForEach-Object { $_.TrimEnd() }) -join "`n" -replace '^\n+|\n+$', ''
    }

    # Splits markdown lines into the inner text of its fenced blocks and the prose around them.
    function Split-Fence([string[]] $Lines) {
        $code = [Collections.Generic.List[string]]::new()
        $text = [Collections.Generic.List[string]]::new()
        $block = $null
        foreach ($line in $Lines) {
            if ($line -match '^\s*```') {
                if ($null -eq $block) { $block = [Collections.Generic.List[string]]::new() }
                else { $code.Add(($block -join "`n")); $block = $null }
            }
            elseif ($null -ne $block) { $block.Add($line) }
            else { $text.Add($line) }
        }
        [pscustomobject]@{ Code = $code.ToArray(); Text = ($text -join "`n") }
    }

    # Reads one PlatyPS v2 page into the parts the MAML carries.
    function Read-HelpMarkdown([string] $Path) {
        $lines = ((Get-Content -Raw -LiteralPath $Path) -replace '\r\n?', "`n") -split "`n"
        $start = 0
        if ($lines[0] -eq '---') {
            $start = 1
            while ($start -lt $lines.Count -and $lines[$start] -ne '---') { $start++ }
            $start++
        }
        # H2 sections, each with its own lines and its H3 subsections; headings inside fences are code.
        $name = $null
        $sections = @{}
        $section = $null
        $sub = $null
        $inFence = $false
        foreach ($line in $lines[$start..($lines.Count - 1)]) {
            if ($line -match '^\s*```') { $inFence = -not $inFence }
            if (-not $inFence -and $line -match '^# (.+)$') { $name = $Matches[1].Trim(); continue }
            if (-not $inFence -and $line -match '^## (.+)$') {
                $section = [pscustomobject]@{ Lines = [Collections.Generic.List[string]]::new(); Subs = [Collections.Generic.List[object]]::new() }
                $sections[$Matches[1].Trim()] = $section
                $sub = $null
                continue
            }
            if (-not $inFence -and $line -match '^### (.+)$' -and $section) {
                $sub = [pscustomobject]@{ Title = $Matches[1].Trim(); Lines = [Collections.Generic.List[string]]::new() }
                $section.Subs.Add($sub)
                continue
            }
            if ($sub) { $sub.Lines.Add($line) } elseif ($section) { $section.Lines.Add($line) }
        }
        $body = { param($s) if ($sections[$s]) { $sections[$s].Lines -join "`n" } else { '' } }
        $subs = { param($s) if ($sections[$s]) { $sections[$s].Subs } else { @() } }

        $parameters = [ordered]@{}
        foreach ($p in & $subs 'PARAMETERS') {
            if ($p.Title -notmatch '^-(\S+)$') { continue }   # "### CommonParameters" is boilerplate, not in the MAML
            $parameterName = $Matches[1]
            # The ```yaml block is the parameter's metadata; the prose around it is its description.
            $kept = [Collections.Generic.List[string]]::new()
            $inYaml = $false
            foreach ($line in $p.Lines) {
                if ($line -match '^\s*```yaml\s*$') { $inYaml = $true; continue }
                if ($inYaml) { if ($line -match '^\s*```\s*$') { $inYaml = $false }; continue }
                $kept.Add($line)
            }
            $parameters[$parameterName] = $kept -join "`n"
        }
        $examples = @(foreach ($e in & $subs 'EXAMPLES') {
                $parts = Split-Fence $e.Lines
                [pscustomobject]@{ Title = $e.Title; Code = $parts.Code -join "`n`n"; Remarks = $parts.Text }
            })
        $types = { param($s) @(foreach ($t in & $subs $s) { [pscustomobject]@{ Type = $t.Title; Description = $t.Lines -join "`n" } }) }
        $links = @(foreach ($line in (& $body 'RELATED LINKS') -split "`n") {
                if ($line -match '^\s*[-*]\s*\[([^\]]*)\]\(([^)]*)\)') { [pscustomobject]@{ Text = $Matches[1]; Uri = $Matches[2] } }
            })
        [pscustomobject]@{
            Name        = $name
            Synopsis    = & $body 'SYNOPSIS'
            Description = & $body 'DESCRIPTION'
            Parameters  = $parameters
            Examples    = $examples
            Inputs      = & $types 'INPUTS'
            Outputs     = & $types 'OUTPUTS'
            Notes       = & $body 'NOTES'
            Links       = $links
        }
    }

    # Reads every <command:command> of a MAML file into the same shape, keyed by command name.
    function Read-Maml([string] $Path) {
        $xml = [xml]::new()
        $xml.Load($Path)
        $ns = [Xml.XmlNamespaceManager]::new($xml.NameTable)
        $ns.AddNamespace('command', 'http://schemas.microsoft.com/maml/dev/command/2004/10')
        $ns.AddNamespace('maml', 'http://schemas.microsoft.com/maml/2004/10')
        $ns.AddNamespace('dev', 'http://schemas.microsoft.com/maml/dev/2004/10')
        $paras = { param($node, $xpath) @(foreach ($p in $node.SelectNodes("$xpath/maml:para", $ns)) { $p.InnerText }) -join "`n`n" }
        $result = [ordered]@{}
        foreach ($c in $xml.SelectNodes('//command:command', $ns)) {
            $parameters = [ordered]@{}
            foreach ($p in $c.SelectNodes('command:parameters/command:parameter', $ns)) {
                $parameters[$p.SelectSingleNode('maml:name', $ns).InnerText] = & $paras $p 'maml:description'
            }
            $examples = @(foreach ($e in $c.SelectNodes('command:examples/command:example', $ns)) {
                    [pscustomobject]@{
                        # PlatyPS frames the markdown title as "--------- <title> ---------".
                        Title        = $e.SelectSingleNode('maml:title', $ns).InnerText.Trim() -replace '^-+ (.*) -+$', '$1'
                        Introduction = & $paras $e 'maml:introduction'
                        Code         = "$($e.SelectSingleNode('dev:code', $ns).InnerText)"
                        Remarks      = & $paras $e 'dev:remarks'
                    }
                })
            $types = { param($xpath) @(foreach ($t in $c.SelectNodes($xpath, $ns)) { [pscustomobject]@{ Type = $t.SelectSingleNode('dev:type/maml:name', $ns).InnerText; Description = & $paras $t 'maml:description' } }) }
            # "Online Version" comes from the page's HelpUri front matter, not from RELATED LINKS.
            $links = @(foreach ($l in $c.SelectNodes('command:relatedLinks/maml:navigationLink', $ns)) {
                    $text = $l.SelectSingleNode('maml:linkText', $ns).InnerText
                    if ($text -ne 'Online Version') { [pscustomobject]@{ Text = $text; Uri = "$($l.SelectSingleNode('maml:uri', $ns).InnerText)" } }
                })
            $name = $c.SelectSingleNode('command:details/command:name', $ns).InnerText.Trim()
            $result[$name] = [pscustomobject]@{
                Name        = $name
                Synopsis    = & $paras $c 'command:details/maml:description'
                Description = & $paras $c 'maml:description'
                Parameters  = $parameters
                Examples    = $examples
                Inputs      = & $types 'command:inputTypes/command:inputType'
                Outputs     = & $types 'command:returnValues/command:returnValue'
                Notes       = & $paras $c 'maml:alertSet/maml:alert'
                Links       = $links
            }
        }
        $result
    }

    # Names what differs between the markdown pages in $DocsFolder and the MAML at $MamlPath, one line per
    # difference; nothing when the MAML says what the pages say. -Command limits it to those commands.
    function Compare-HelpSource([string] $DocsFolder, [string] $MamlPath, [string[]] $Command) {
        $out = [Collections.Generic.List[string]]::new()
        # Shows at most 160 characters, with control characters (such as a U+0080 left behind) made visible.
        $show = {
            param($s)
            if ($s.Length -gt 160) { $s = $s.Substring(0, 160) + '...' }
            [regex]::Replace($s, '[\x00-\x08\x0B-\x1F\x7F-\x9F]', { param($m) '\u{0:X4}' -f [int][char]$m.Value })
        }
        $prose = {
            param($what, $docs, $maml)
            $a = Format-Prose $docs; $b = Format-Prose $maml
            if ($a -cne $b) {
                $at = 0; while ($at -lt [Math]::Min($a.Length, $b.Length) -and $a[$at] -ceq $b[$at]) { $at++ }
                $from = [Math]::Max(0, $at - 30)
                $out.Add("${name}: $what differs at character ${at}: docs '$(& $show $a.Substring($from))' <> MAML '$(& $show $b.Substring($from))'")
            }
        }
        $maml = Read-Maml $MamlPath
        $pages = @{}
        foreach ($file in Get-ChildItem -LiteralPath $DocsFolder -Filter '*-*.md') {
            if ($Command -and $file.BaseName -notin $Command) { continue }
            $page = Read-HelpMarkdown $file.FullName
            $pages[$page.Name] = $page
            $name = $page.Name
            if ($name -ne $file.BaseName) { $out.Add("$($file.Name): its title is '$name'") }
            $m = $maml[$name]
            if (-not $m) { $out.Add("${name}: no <command:command> in the MAML"); continue }

            & $prose 'synopsis' $page.Synopsis $m.Synopsis
            & $prose 'description' $page.Description $m.Description
            & $prose 'notes' $page.Notes $m.Notes

            $docNames = @($page.Parameters.Keys | Sort-Object)
            $mamlNames = @($m.Parameters.Keys | Sort-Object)
            if (($docNames -join ',') -cne ($mamlNames -join ',')) {
                $out.Add("${name}: parameters differ: docs -$($docNames -join ' -') <> MAML -$($mamlNames -join ' -')")
            }
            foreach ($p in $docNames | Where-Object { $_ -cin $mamlNames }) {
                & $prose "parameter -${p}: description" $page.Parameters[$p] $m.Parameters[$p]
            }

            if ($page.Examples.Count -ne $m.Examples.Count) {
                $out.Add("${name}: examples: $($page.Examples.Count) in docs, $($m.Examples.Count) in MAML")
            }
            for ($i = 0; $i -lt [Math]::Min($page.Examples.Count, $m.Examples.Count); $i++) {
                $d = $page.Examples[$i]; $e = $m.Examples[$i]; $n = $i + 1
                & $prose "example ${n}: title" $d.Title $e.Title
                # The Docs task moves code and text out of maml:introduction; anything left there was not rewritten.
                if ((Format-Prose $e.Introduction)) { $out.Add("${name}: example ${n}: maml:introduction is not empty: '$(& $show (Format-Prose $e.Introduction))'") }
                if ((Format-Code $d.Code) -cne (Format-Code $e.Code)) {
                    $out.Add("${name}: example ${n}: code differs: docs '$(& $show (Format-Code $d.Code))' <> MAML '$(& $show (Format-Code $e.Code))'")
                }
                & $prose "example ${n}: remarks" $d.Remarks $e.Remarks
            }

            foreach ($kind in 'Inputs', 'Outputs') {
                $label = $kind.ToLowerInvariant().TrimEnd('s')
                $a = @($page.$kind); $b = @($m.$kind)
                if ((@($a.Type) -join ', ') -cne (@($b.Type) -join ', ')) {
                    $out.Add("${name}: $label types differ: docs '$(@($a.Type) -join ', ')' <> MAML '$(@($b.Type) -join ', ')'")
                    continue
                }
                for ($i = 0; $i -lt $a.Count; $i++) { & $prose "$label $($a[$i].Type): description" $a[$i].Description $b[$i].Description }
            }

            $docLinks = @($page.Links | ForEach-Object { "[$($_.Text)]($($_.Uri))" }) -join ' '
            $mamlLinks = @($m.Links | ForEach-Object { "[$($_.Text)]($($_.Uri))" }) -join ' '
            if ($docLinks -cne $mamlLinks) { $out.Add("${name}: related links differ: docs $docLinks <> MAML $mamlLinks") }
        }
        foreach ($name in $maml.Keys | Where-Object { -not $pages.ContainsKey($_) -and (-not $Command -or $_ -in $Command) }) {
            $out.Add("${name}: in the MAML but no page in docs/cmdlets")
        }
        $out.ToArray()
    }

    $pagesByName = @{}
    foreach ($file in Get-ChildItem -LiteralPath $docsFolder -Filter '*-*.md') { $pagesByName[$file.BaseName] = Read-HelpMarkdown $file.FullName }
    $mamlByName = Read-Maml $mamlPath
}

Describe 'Help for <Name>' -ForEach $commands {
    BeforeAll {
        $help = Get-Help -Name $Name -Full
        $command = Get-Command -Name $Name
        $codeParameters = @($command.Parameters.Keys | Where-Object { $_ -notin $commonParameters } | Sort-Object)
    }

    It 'has a markdown page in docs/cmdlets and an entry in the committed MAML' {
        Join-Path $repoRoot "docs/cmdlets/$Name.md" | Should -Exist
        $mamlByName.Contains($Name) | Should -BeTrue -Because "module/en-US/RunTools.dll-Help.xml should have a <command:command> for $Name"
    }

    It 'documents exactly its parameters in docs/cmdlets and in the MAML' {
        @($pagesByName[$Name].Parameters.Keys | Sort-Object) -join ' ' | Should -BeExactly ($codeParameters -join ' ') -Because "the ### -Name sections of docs/cmdlets/$Name.md should be the cmdlet's parameters"
        @($mamlByName[$Name].Parameters.Keys | Sort-Object) -join ' ' | Should -BeExactly ($codeParameters -join ' ') -Because "the MAML of $Name should describe the cmdlet's parameters"
    }

    It 'goes online to its page in the repository: HelpUri, the page''s front matter and the MAML agree' {
        $projectUri = (Import-PowerShellDataFile (Join-Path $repoRoot 'RunTools.psd1')).PrivateData.PSData.ProjectUri
        $projectUri | Should -Not -BeNullOrEmpty
        $expected = "$projectUri/blob/main/docs/cmdlets/$Name.md"
        $command.HelpUri | Should -BeExactly $expected -Because 'Get-Help -Online opens the cmdlet''s HelpUri'
        $front = @(Get-Content -LiteralPath (Join-Path $repoRoot "docs/cmdlets/$Name.md") -TotalCount 12 | Where-Object { $_ -match '^HelpUri:' })
        $front | Should -HaveCount 1
        ($front[0] -replace '^HelpUri:\s*', '').Trim("'", '"', ' ') | Should -BeExactly $expected
        $online = @($help.relatedLinks.navigationLink | Where-Object linkText -EQ 'Online Version')
        $online | Should -HaveCount 1
        $online[0].uri | Should -BeExactly $expected
    }

    It 'has a synopsis, not the generated syntax placeholder' {
        $help.Synopsis | Should -Not -BeNullOrEmpty
        $help.Synopsis.Trim() | Should -Not -BeLike "$Name *"
        $help.Synopsis.Trim() | Should -Not -Be $Name
        $help.Synopsis | Should -Not -Match '\{\{'
    }

    It 'has a description' {
        $text = Get-Text $help.description
        $text.Trim() | Should -Not -BeNullOrEmpty
        $text | Should -Not -Match '\{\{'
    }

    It 'describes every parameter' {
        foreach ($parameter in $codeParameters) {
            $entry = @($help.parameters.parameter) | Where-Object name -EQ $parameter
            $entry | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name should be in the help"
            $text = Get-Text $entry.description
            $text.Trim() | Should -Not -BeNullOrEmpty -Because "-$parameter of $Name needs a description"
            $text | Should -Not -Match '\{\{' -Because "-$parameter of $Name has a placeholder"
        }
    }

    It 'has at least two examples, each with code and remarks' {
        $examples = @($help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($example in $examples) {
            $example.code | Should -Not -BeNullOrEmpty -Because "$($example.title) needs code"
            $example.code | Should -Not -Match '```' -Because 'code fences must not reach Get-Help'
            (Get-Text $example.remarks).Trim() | Should -Not -BeNullOrEmpty -Because "$($example.title) needs remarks"
        }
    }
}

Describe 'Module help files' {
    It 'has about_RunTools' {
        Join-Path $env:RUNTOOLS_MODULE_PATH 'en-US/about_RunTools.help.txt' | Should -Exist
        Get-Help about_RunTools | Out-String | Should -Match 'run directory'
    }

    It 'has no page or MAML entry for a command the module does not export' {
        $exported = @(Get-Command -Module RunTools | ForEach-Object Name)
        @($pagesByName.Keys | Where-Object { $_ -notin $exported }) -join ', ' | Should -BeNullOrEmpty -Because 'every docs/cmdlets page should describe an exported command'
        @($mamlByName.Keys | Where-Object { $_ -notin $exported }) -join ', ' | Should -BeNullOrEmpty -Because 'every MAML entry should describe an exported command'
    }

    It 'ships the committed MAML in the built module' {
        $built = Join-Path $env:RUNTOOLS_MODULE_PATH 'en-US/RunTools.dll-Help.xml'
        $mamlPath | Should -Exist
        $built | Should -Exist
        ((Get-Content -Raw $built) -replace '\s+', '') | Should -BeExactly ((Get-Content -Raw $mamlPath) -replace '\s+', '')
    }

    It 'has committed MAML that is current with docs/cmdlets' {
        $differences = @(Compare-HelpSource -DocsFolder $docsFolder -MamlPath $mamlPath)
        $differences -join "`n" | Should -BeNullOrEmpty -Because 'module/en-US/RunTools.dll-Help.xml should say what docs/cmdlets says: run ./build.ps1 -Task Docs (needs Microsoft.PowerShell.PlatyPS) or fix the XML, and commit it'

        # Where PlatyPS is installed, the real Docs task must also reproduce the committed file.
        if (Get-Module -ListAvailable Microsoft.PowerShell.PlatyPS) {
            $sandbox = Join-Path $TestDrive 'docs-build'
            $null = New-Item -ItemType Directory -Force (Join-Path $sandbox 'docs')
            Copy-Item (Join-Path $repoRoot 'build.ps1') $sandbox
            Copy-Item $docsFolder (Join-Path $sandbox 'docs') -Recurse
            Import-Module (Join-Path $repoRoot 'tools/ChildPwsh.psm1') -Force
            $build = Invoke-ChildPwsh -Command "& '$((Join-Path $sandbox 'build.ps1') -replace "'", "''")' -Task Docs" -TimeoutSec 300
            $build.ExitCode | Should -Be 0 -Because "$($build.Output)`n$($build.Error)"
            $fresh = Join-Path $sandbox 'module/en-US/RunTools.dll-Help.xml'
            $fresh | Should -Exist
            ((Get-Content -Raw $mamlPath) -replace '\s+', '') | Should -BeExactly ((Get-Content -Raw $fresh) -replace '\s+', '') -Because 'module/en-US/RunTools.dll-Help.xml is stale: run ./build.ps1 -Task Docs and commit it'
        }
    }
}

Describe 'The docs/MAML comparison' {
    BeforeEach {
        # A fresh copy of the pages and the MAML for each case.
        $copy = Join-Path $TestDrive ([guid]::NewGuid().ToString('N'))
        $copyDocs = Join-Path $copy 'cmdlets'
        $null = New-Item -ItemType Directory -Force $copyDocs
        Copy-Item (Join-Path $docsFolder '*.md') $copyDocs
        $copyMaml = Join-Path $copy 'RunTools.dll-Help.xml'
        Copy-Item $mamlPath $copyMaml
    }

    It 'finds nothing when only whitespace differs' {
        # Re-indent every paragraph and reflow its lines, as another XML writer or editor might.
        $xml = [xml]::new()
        $xml.PreserveWhitespace = $true
        $xml.Load($copyMaml)
        $ns = [Xml.XmlNamespaceManager]::new($xml.NameTable)
        $ns.AddNamespace('maml', 'http://schemas.microsoft.com/maml/2004/10')
        $reflowed = 0
        foreach ($p in $xml.SelectNodes('//maml:para', $ns)) {
            if ($p.InnerText -match ' ') { $p.InnerText = "`n    " + ($p.InnerText -replace ' ', "`n      ") + "`n  "; $reflowed++ }
        }
        $reflowed | Should -BeGreaterThan 100
        $xml.Save($copyMaml)
        $page = Join-Path $copyDocs 'Start-Run.md'
        Set-Content -LiteralPath $page -Value ((Get-Content -Raw $page) -replace '\n', "`r`n") -NoNewline

        @(Compare-HelpSource -DocsFolder $copyDocs -MamlPath $copyMaml) -join "`n" | Should -BeNullOrEmpty
    }

    It 'reports <Case>' -ForEach $drift {
        if ($Target -eq 'Markdown') {
            $page = Join-Path $copyDocs 'Start-Run.md'
            $before = Get-Content -Raw $page
            $after = & $Mutate $before
            $after -ceq $before | Should -BeFalse -Because 'the mutation must change the page'
            Set-Content -LiteralPath $page -Value $after -NoNewline
        }
        else {
            $xml = [xml]::new()
            $xml.Load($copyMaml)
            $before = $xml.OuterXml
            $ns = [Xml.XmlNamespaceManager]::new($xml.NameTable)
            $ns.AddNamespace('command', 'http://schemas.microsoft.com/maml/dev/command/2004/10')
            $ns.AddNamespace('maml', 'http://schemas.microsoft.com/maml/2004/10')
            $ns.AddNamespace('dev', 'http://schemas.microsoft.com/maml/dev/2004/10')
            $node = $xml.SelectSingleNode("//command:command[command:details/command:name='Start-Run']", $ns)
            & $Mutate $node $ns
            $xml.OuterXml -ceq $before | Should -BeFalse -Because 'the mutation must change the MAML'
            $xml.Save($copyMaml)
        }

        # Only Start-Run is compared (the whole set is compared above), which keeps each case fast.
        $differences = @(Compare-HelpSource -DocsFolder $copyDocs -MamlPath $copyMaml -Command 'Start-Run')
        $differences.Count | Should -BeGreaterThan 0
        @($differences | Where-Object { $_ -match $Expect }).Count | Should -BeGreaterThan 0 -Because "a difference should match '$Expect'; got:`n$($differences -join "`n")"
    }
}
