package envfmt

import (
	"os"
	"runtime"
	"strings"
)

// DetectOptions holds what Detect looks at. Zero fields mean the real
// thing: runtime.GOOS, os.Getenv and the running process's ancestors.
type DetectOptions struct {
	// GOOS is the operating system to detect for.
	GOOS string
	// Getenv reads an environment variable.
	Getenv func(string) string
	// Ancestors returns the executable names of the parent process, its
	// parent and so on, nearest first (for example "pwsh.exe",
	// "WindowsTerminal.exe"). Only consulted on Windows.
	Ancestors func() ([]string, error)
}

// Detect guesses the user's shell.
//
// On Unix it is the base name of $SHELL: csh means tcsh, dash, ksh, mksh,
// ash, posh and yash mean sh, pwsh means powershell, and anything unknown
// or unset means bash.
//
// On Windows it is the nearest ancestor process that is a shell:
// pwsh.exe or powershell.exe (powershell), cmd.exe (cmd), or a Unix shell
// run from Git Bash, MSYS2 or Cygwin (bash.exe, zsh.exe, ...). PSModulePath
// is not consulted: cmd started from PowerShell inherits it. When no
// ancestor is a known shell (or the process list cannot be read), $SHELL
// decides if set, and otherwise powershell, the default shell of current
// Windows versions.
func Detect(opts DetectOptions) Shell {
	goos := opts.GOOS
	if goos == "" {
		goos = runtime.GOOS
	}
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	if goos != "windows" {
		if sh, ok := shellFromName(getenv("SHELL")); ok {
			return sh
		}
		return Bash
	}
	ancestors := opts.Ancestors
	if ancestors == nil {
		ancestors = processAncestors
	}
	names, _ := ancestors() // a partial list is still useful
	for _, name := range names {
		if sh, ok := shellFromName(name); ok {
			return sh
		}
	}
	if sh, ok := shellFromName(getenv("SHELL")); ok {
		return sh
	}
	return PowerShell
}

// shellFromName maps a shell program's name (with or without a directory,
// ".exe" or a login shell's leading "-") to a Shell.
func shellFromName(name string) (Shell, bool) {
	name = strings.ToLower(name[strings.LastIndexAny(name, `/\`)+1:])
	name = strings.TrimPrefix(name, "-")
	name = strings.TrimSuffix(name, ".exe")
	switch name {
	case "bash":
		return Bash, true
	case "zsh":
		return Zsh, true
	case "sh", "dash", "ash", "ksh", "ksh93", "mksh", "pdksh", "oksh", "posh", "yash":
		return Sh, true
	case "fish":
		return Fish, true
	case "tcsh", "csh":
		return Tcsh, true
	case "pwsh", "powershell", "powershell_ise":
		return PowerShell, true
	case "cmd":
		return Cmd, true
	}
	return "", false
}
