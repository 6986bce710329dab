package envfmt

import (
	"fmt"
	"strings"
)

// Shell names a shell that output can be rendered for.
type Shell string

// The shells envfmt renders for.
const (
	Bash       Shell = "bash"
	Zsh        Shell = "zsh"
	Sh         Shell = "sh"
	Fish       Shell = "fish"
	Tcsh       Shell = "tcsh"
	PowerShell Shell = "powershell"
	Cmd        Shell = "cmd"
)

// Shells returns every supported shell, in the order they are documented.
func Shells() []Shell {
	return []Shell{Bash, Zsh, Sh, Fish, Tcsh, PowerShell, Cmd}
}

// aliases maps other common spellings to a supported shell.
var aliases = map[string]Shell{
	"pwsh": PowerShell,
	"csh":  Tcsh,
}

// ParseShell returns the Shell named by s (case-insensitive; "pwsh" and
// "csh" are accepted as aliases of powershell and tcsh).
func ParseShell(s string) (Shell, error) {
	name := strings.ToLower(strings.TrimSpace(s))
	for _, sh := range Shells() {
		if name == string(sh) {
			return sh, nil
		}
	}
	if sh, ok := aliases[name]; ok {
		return sh, nil
	}
	return "", fmt.Errorf("unknown shell %q: use one of %s", s, shellList())
}

// Valid reports whether s is one of the supported shells.
func (s Shell) Valid() bool {
	for _, sh := range Shells() {
		if s == sh {
			return true
		}
	}
	return false
}

func shellList() string {
	names := make([]string, 0, len(Shells()))
	for _, sh := range Shells() {
		names = append(names, string(sh))
	}
	return strings.Join(names, ", ")
}
