package envfmt

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

func TestParseShell(t *testing.T) {
	tests := []struct {
		in   string
		want Shell
	}{
		{"bash", Bash}, {"zsh", Zsh}, {"sh", Sh}, {"fish", Fish}, {"tcsh", Tcsh},
		{"powershell", PowerShell}, {"cmd", Cmd},
		{"PowerShell", PowerShell}, {" Bash ", Bash}, {"pwsh", PowerShell}, {"csh", Tcsh},
	}
	for _, tt := range tests {
		got, err := ParseShell(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseShell(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "nu", "bash5", "cmd.exe", "emacs"} {
		_, err := ParseShell(bad)
		if err == nil {
			t.Errorf("ParseShell(%q): no error", bad)
			continue
		}
		want := `unknown shell "` + bad + `": use one of bash, zsh, sh, fish, tcsh, powershell, cmd`
		if err.Error() != want {
			t.Errorf("ParseShell(%q) error:\n got %s\nwant %s", bad, err, want)
		}
	}
}

func TestShellsAreValidAndRendered(t *testing.T) {
	for _, sh := range Shells() {
		if !sh.Valid() {
			t.Errorf("%s not valid", sh)
		}
		if _, ok := dialects[sh]; !ok {
			t.Errorf("%s has no dialect", sh)
		}
	}
	if Shell("nu").Valid() {
		t.Error("nu is valid")
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"A", "_", "a1", "DOCKER_HOST", "_x_9", "no_proxy"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("ValidateName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "1A", "A-B", "A B", "A=B", "É", "A;rm", "$A", "A\n", "A.B"} {
		err := ValidateName(bad)
		if err == nil {
			t.Errorf("ValidateName(%q): no error", bad)
			continue
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) || strings.Contains(err.Error(), "\n") {
			t.Errorf("ValidateName(%q): error %q should name the variable on one line", bad, err)
		}
	}
	// Invalid names are refused by every renderer, nothing written.
	doc := Document{Blocks: []Block{{Vars: []Var{{"A B", "x"}}}}}
	for _, sh := range Shells() {
		for _, opts := range []RenderOptions{{}, {Unset: true}, {ScriptReadable: true}} {
			var b strings.Builder
			if err := Render(&b, sh, doc, opts); err == nil || b.Len() != 0 {
				t.Errorf("%s %+v: error %v, output %q", sh, opts, err, b.String())
			}
		}
	}
	var b strings.Builder
	if err := RenderJSON(&b, doc); err == nil {
		t.Error("JSON accepted an invalid name")
	}
}

func TestDetectUnix(t *testing.T) {
	tests := []struct {
		shell string
		want  Shell
	}{
		{"/bin/bash", Bash},
		{"/usr/bin/zsh", Zsh},
		{"/usr/local/bin/fish", Fish},
		{"/bin/tcsh", Tcsh},
		{"/bin/csh", Tcsh},
		{"/bin/dash", Sh},
		{"/bin/sh", Sh},
		{"/bin/ksh", Sh},
		{"/bin/mksh", Sh},
		{"/bin/ash", Sh},
		{"/opt/homebrew/bin/pwsh", PowerShell},
		{"-zsh", Zsh},
		{"zsh", Zsh},
		{"/usr/bin/nu", Bash},
		{"/usr/bin/xonsh", Bash},
		{"", Bash},
		{"/", Bash},
	}
	for _, goos := range []string{"linux", "darwin", "freebsd"} {
		for _, tt := range tests {
			got := Detect(DetectOptions{
				GOOS:   goos,
				Getenv: envMap{"SHELL": tt.shell}.get,
				Ancestors: func() ([]string, error) {
					t.Error("Ancestors called on Unix")
					return nil, nil
				},
			})
			if got != tt.want {
				t.Errorf("%s SHELL=%q: got %q, want %q", goos, tt.shell, got, tt.want)
			}
		}
	}
}

type envMap map[string]string

func (m envMap) get(k string) string { return m[k] }

func TestDetectWindows(t *testing.T) {
	psEnv := envMap{"PSModulePath": `C:\Users\me\Documents\PowerShell\Modules`}
	tests := []struct {
		name      string
		ancestors []string
		err       error
		env       envMap
		want      Shell
	}{
		{"pwsh", []string{"pwsh.exe", "WindowsTerminal.exe", "explorer.exe"}, nil, psEnv, PowerShell},
		{"windows powershell", []string{"powershell.exe", "explorer.exe"}, nil, psEnv, PowerShell},
		{"cmd", []string{"cmd.exe", "explorer.exe"}, nil, nil, Cmd},
		{"cmd started from powershell", []string{"cmd.exe", "pwsh.exe"}, nil, psEnv, Cmd},
		{"powershell started from cmd", []string{"powershell.exe", "cmd.exe"}, nil, nil, PowerShell},
		{"upper case", []string{"CMD.EXE"}, nil, psEnv, Cmd},
		{"go run in cmd", []string{"go.exe", "cmd.exe", "explorer.exe"}, nil, psEnv, Cmd},
		{"git bash", []string{"bash.exe", "mintty.exe"}, nil, envMap{"SHELL": "/usr/bin/bash"}, Bash},
		{"FOR /f child cmd", []string{"cmd.exe", "cmd.exe", "pwsh.exe"}, nil, nil, Cmd},
		{"nothing known, SHELL set", []string{"sshd.exe"}, nil, envMap{"SHELL": `C:\msys64\usr\bin\zsh.exe`}, Zsh},
		{"nothing known, PSModulePath is not proof", []string{"python.exe"}, nil, psEnv, PowerShell},
		{"list failed", nil, errors.New("access denied"), nil, PowerShell},
		{"partial list", []string{"cmd.exe"}, errors.New("walk stopped"), nil, Cmd},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Detect(DetectOptions{
				GOOS:      "windows",
				Getenv:    tt.env.get,
				Ancestors: func() ([]string, error) { return tt.ancestors, tt.err },
			})
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDetectDefaults runs Detect with nothing injected: on Unix it reads
// this process's $SHELL.
func TestDetectDefaults(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows detection reads the process tree: see TestProcessAncestors")
	}
	t.Setenv("SHELL", "/usr/bin/fish")
	if got := Detect(DetectOptions{}); got != Fish {
		t.Errorf("SHELL=/usr/bin/fish: got %q", got)
	}
	t.Setenv("SHELL", "/bin/tcsh")
	if got := Detect(DetectOptions{}); got != Tcsh {
		t.Errorf("SHELL=/bin/tcsh: got %q", got)
	}
}
