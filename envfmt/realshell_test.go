//go:build unix

package envfmt

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// realShell is a shell binary the tests run.
type realShell struct {
	sh  Shell
	bin string
	// status is how the shell spells the last exit status.
	status string
	// history: an interactive instance expands ! history.
	history bool
}

var realShells = []realShell{
	{Bash, "bash", "$?", true},
	{Sh, "dash", "$?", false},
	{Zsh, "zsh", "$?", true},
	{Fish, "fish", "$status", false},
	{Tcsh, "tcsh", "$status", true},
}

// lookShell finds bin, skipping the test when it is missing unless CI is
// set (CI must run every shell).
func lookShell(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed (CI is set, so this fails): apt-get install bash dash zsh fish tcsh", bin)
		}
		t.Skipf("%s not installed (apt-get install %s)", bin, bin)
	}
	return p
}

func TestRealShells(t *testing.T) {
	for _, rs := range realShells {
		t.Run(string(rs.sh), func(t *testing.T) {
			bin := lookShell(t, rs.bin)
			for _, mode := range []string{modeScript, modePipe, modeTerminal} {
				for _, lang := range []string{"C.UTF-8", "C"} {
					t.Run(mode+"/"+lang, func(t *testing.T) {
						runRealShell(t, rs, bin, mode, lang)
					})
				}
			}
		})
	}
}

// The ways a shell is run.
const (
	// modeScript: the commands are a script file given as the argument
	// (non-interactive).
	modeScript = "script"
	// modePipe: `shell -i` reading the commands from a pipe (interactive:
	// history expansion is on).
	modePipe = "interactive"
	// modeTerminal: the shell on a pseudo-terminal, the commands typed one
	// line at a time, as a user does (line editor, history, job control).
	modeTerminal = "terminal"
)

// step is one command line typed into the shell; waitFor, if set, is a
// file the line creates (the terminal runner waits for it before typing
// the next line).
type step struct {
	line    string
	waitFor string
}

func runScript(ctx context.Context, bin, dir string, env []string, steps []step) (string, error) {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.line + "\n")
	}
	file := filepath.Join(dir, "apply")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, bin, file)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	transcript := "script:\n" + b.String() + "stdout:\n" + stdout.String() + "stderr:\n" + stderr.String()
	if err == nil && stderr.Len() > 0 {
		err = fmt.Errorf("stderr not empty: %q", stderr.String())
	}
	return transcript, err
}

func runPipe(ctx context.Context, bin, dir string, env []string, steps []step) (string, error) {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(s.line + "\n")
	}
	b.WriteString("exit\n")
	cmd := exec.CommandContext(ctx, bin, "-i")
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin = strings.NewReader(b.String())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return "input:\n" + b.String() + "output:\n" + out.String(), err
}

// runRealShell renders the hostile values for rs, applies the output the
// way its hint says, reads the environment back with `env -0`, then applies
// the --unset output and checks the variables are gone.
func runRealShell(t *testing.T, rs realShell, bin string, mode string, lang string) {
	dir := t.TempDir()
	outDir := filepath.Join(dir, "out dir") // a space, so the hint must quote
	home := filepath.Join(dir, "home")
	for _, d := range []string{outDir, home} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Empty rc files: user configuration does not interfere, and zsh does
	// not start its new-user wizard.
	for _, rc := range []string{".bashrc", ".zshrc", ".tcshrc"} {
		if err := os.WriteFile(filepath.Join(home, rc), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	var vars []Var
	for _, h := range hostileValues(dir) {
		doc := Document{Blocks: []Block{{Vars: []Var{{h.name, h.value}}}}}
		err := Render(&bytes.Buffer{}, rs.sh, doc, RenderOptions{})
		refused := slices.Contains(h.refusedBy, rs.sh)
		switch {
		case refused && err == nil:
			t.Errorf("%s: %s accepted, want a refusal", h.name, rs.sh)
		case !refused && err != nil:
			t.Errorf("%s: %v", h.name, err)
		case !refused:
			vars = append(vars, Var{h.name, h.value})
		}
	}
	doc := Document{Blocks: []Block{
		{Comment: []string{"docker env:", "Set these to reach the docker daemon; don't edit! `$HOME` # (x)"}, Vars: vars[:4]},
		{Comment: []string{"hostile values:"}, Vars: vars[4:]},
	}}
	setFile := writeRendered(t, rs.sh, doc, filepath.Join(outDir, "set."+string(rs.sh)), RenderOptions{})
	unsetFile := writeRendered(t, rs.sh, doc, filepath.Join(outDir, "unset."+string(rs.sh)), RenderOptions{Unset: true})

	var steps []step
	if mode != modeScript && rs.history {
		// Proves that this instance really expands history.
		steps = append(steps,
			step{line: "true hist-canary"},
			step{line: "echo !$ > " + dir + "/canary", waitFor: dir + "/canary"})
	}
	steps = append(steps,
		step{line: hintLine(t, rs.sh, setFile)},
		step{line: "echo " + rs.status + " > " + dir + "/set.status", waitFor: dir + "/set.status"},
		step{line: "env -0 > " + dir + "/set.env", waitFor: dir + "/set.env"},
		step{line: hintLine(t, rs.sh, unsetFile)},
		step{line: "echo " + rs.status + " > " + dir + "/unset.status", waitFor: dir + "/unset.status"},
		step{line: "env -0 > " + dir + "/unset.env", waitFor: dir + "/unset.env"},
	)

	term := "dumb"
	if mode == modeTerminal {
		term = "xterm-256color"
	}
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"LANG=" + lang,
		"LC_ALL=" + lang,
		"TERM=" + term,
		"KEEP_ME=kept",
	}
	for _, v := range vars {
		env = append(env, v.Name+"=stale") // set must replace, unset must remove
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var transcript string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("transcript:\n%s", transcript)
		}
	})
	var err error
	switch mode {
	case modeScript:
		transcript, err = runScript(ctx, bin, dir, env, steps)
	case modePipe:
		transcript, err = runPipe(ctx, bin, dir, env, steps)
	case modeTerminal:
		transcript, err = runTerminal(ctx, bin, dir, env, steps)
	}
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}

	if mode != modeScript && rs.history {
		got := readFile(t, filepath.Join(dir, "canary"))
		if got != "hist-canary\n" {
			t.Fatalf("history expansion is not active in this instance (canary %q): the test proves nothing about !", got)
		}
	}
	for _, phase := range []string{"set", "unset"} {
		if st := readFile(t, filepath.Join(dir, phase+".status")); st != "0\n" {
			t.Errorf("%s: applying the output exited with status %q", phase, strings.TrimSpace(st))
		}
	}

	after := parseEnv0(t, readFile(t, filepath.Join(dir, "set.env")))
	for _, v := range vars {
		got, ok := after[v.Name]
		if !ok {
			t.Errorf("%s: missing after set", v.Name)
		} else if got != v.Value {
			t.Errorf("%s: got %q, want %q", v.Name, got, v.Value)
		}
	}
	if after["KEEP_ME"] != "kept" {
		t.Errorf("KEEP_ME changed: %q", after["KEEP_ME"])
	}

	after = parseEnv0(t, readFile(t, filepath.Join(dir, "unset.env")))
	for _, v := range vars {
		if got, ok := after[v.Name]; ok {
			t.Errorf("%s: still set after unset: %q", v.Name, got)
		}
	}
	if after["KEEP_ME"] != "kept" {
		t.Errorf("KEEP_ME changed by unset: %q", after["KEEP_ME"])
	}

	pwned, _ := filepath.Glob(filepath.Join(dir, "pwned-*"))
	if len(pwned) > 0 {
		t.Errorf("a value ran code: %q exist", pwned)
	}
}

// writeRendered renders doc to path, with the hint command `cat path`.
func writeRendered(t *testing.T, sh Shell, doc Document, path string, opts RenderOptions) string {
	t.Helper()
	doc.ApplyCommand = []string{"cat", path}
	var buf bytes.Buffer
	if err := Render(&buf, sh, doc, opts); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// hintLine extracts the command the output tells the user to run (its last
// line, a comment) so the test types exactly that.
func hintLine(t *testing.T, sh Shell, path string) string {
	t.Helper()
	out := strings.TrimSuffix(readFile(t, path), "\n")
	last := out[strings.LastIndexByte(out, '\n')+1:]
	var hint string
	var err error
	switch {
	case sh == Tcsh:
		if !strings.HasPrefix(last, ": ") || !strings.HasSuffix(last, ";") {
			t.Fatalf("tcsh hint is not a ': ...;' comment: %q", last)
		}
		hint, err = parseTcshWord(strings.TrimSuffix(strings.TrimPrefix(last, ": "), ";"))
	case strings.HasPrefix(last, "# "):
		hint = strings.TrimPrefix(last, "# ")
	default:
		err = fmt.Errorf("not a comment")
	}
	if err != nil {
		t.Fatalf("hint line %q: %v", last, err)
	}
	if !strings.Contains(hint, "cat ") || !strings.Contains(hint, filepath.Base(path)) {
		t.Fatalf("hint %q does not run the command that printed %s", hint, path)
	}
	return hint
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parseEnv0(t *testing.T, s string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(s, "\x00"), "\x00") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			t.Fatalf("bad env -0 entry %q", kv)
		}
		m[k] = v
	}
	return m
}
