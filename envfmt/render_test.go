package envfmt

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func dockerBlock() Block {
	return Block{
		Comment: []string{
			"Set the following environment variables to enable access to the",
			"docker daemon running inside of the devbundle virtual machine:",
		},
		Vars: []Var{
			{"DOCKER_HOST", "tcp://127.0.0.1:41235"},
			{"DOCKER_CERT_PATH", "/home/dev/.local/share/devbundle/machines/default/docker"},
			{"DOCKER_TLS_VERIFY", "1"},
			{"DOCKER_API_VERSION", "1.43"},
		},
	}
}

func twoBlocks() []Block {
	docker := dockerBlock()
	docker.Comment = []string{"docker env:"}
	docker.Vars[1].Value = "/home/dev/My Machines/dev's vm/docker"
	return []Block{docker, {
		Comment: []string{
			"openshift env:",
			"You can access the OpenShift console on: https://127.0.0.1:8443/console",
			"To use OpenShift CLI, run: oc login https://127.0.0.1:8443",
		},
		Vars: []Var{
			{"OPENSHIFT_URL", "https://127.0.0.1:8443"},
			{"OPENSHIFT_WEB_CONSOLE", "https://127.0.0.1:8443/console"},
			{"DOCKER_REGISTRY", "hub.openshift.127.0.0.1.nip.io"},
		},
	}}
}

// applyCommand is what the env command would pass: the flags the user
// gave, with --shell spelled out for the Windows shells.
func applyCommand(sh Shell, service string, unset bool) []string {
	argv := []string{"devbundle", "env"}
	if service != "" {
		argv = append(argv, service)
	}
	if sh == PowerShell || sh == Cmd {
		argv = append(argv, "--shell", string(sh))
	}
	if unset {
		argv = append(argv, "--unset")
	}
	return argv
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./envfmt/ -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run with -update if the change is intended)\n--- got:\n%s\n--- want:\n%s", path, got, want)
	}
}

func TestGolden(t *testing.T) {
	docs := map[string]func(sh Shell, unset bool) Document{
		"docker": func(sh Shell, unset bool) Document {
			return Document{Blocks: []Block{dockerBlock()}, ApplyCommand: applyCommand(sh, "docker", unset)}
		},
		"two-blocks": func(sh Shell, unset bool) Document {
			return Document{Blocks: twoBlocks(), ApplyCommand: applyCommand(sh, "", unset)}
		},
	}
	for docName, mk := range docs {
		var scriptReadable []byte
		for _, sh := range Shells() {
			for _, mode := range []string{"set", "unset", "script-readable"} {
				t.Run(docName+"/"+string(sh)+"/"+mode, func(t *testing.T) {
					var buf bytes.Buffer
					opts := RenderOptions{Unset: mode == "unset", ScriptReadable: mode == "script-readable"}
					if err := Render(&buf, sh, mk(sh, opts.Unset), opts); err != nil {
						t.Fatal(err)
					}
					if mode == "script-readable" {
						// The same for every shell: one golden file.
						if scriptReadable == nil {
							scriptReadable = buf.Bytes()
							checkGolden(t, docName+".script-readable.golden", buf.Bytes())
						} else if !bytes.Equal(buf.Bytes(), scriptReadable) {
							t.Errorf("script-readable output for %s differs from bash's:\n%s", sh, buf.Bytes())
						}
						return
					}
					checkGolden(t, docName+"."+mode+"."+string(sh)+".golden", buf.Bytes())
				})
			}
		}
		t.Run(docName+"/json", func(t *testing.T) {
			var buf bytes.Buffer
			if err := RenderJSON(&buf, mk(Bash, false)); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, docName+".json.golden", buf.Bytes())
		})
	}
}

// TestPOSIXInvariant checks the property vsm's tests relied on: every line
// of POSIX output is a comment, an export/unset line or empty.
func TestPOSIXInvariant(t *testing.T) {
	for _, unset := range []bool{false, true} {
		var buf bytes.Buffer
		doc := Document{Blocks: twoBlocks(), ApplyCommand: applyCommand(Bash, "", unset)}
		if err := Render(&buf, Bash, doc, RenderOptions{Unset: unset}); err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			ok := line == "" || strings.HasPrefix(line, "#") ||
				(!unset && strings.HasPrefix(line, "export ")) ||
				(unset && strings.HasPrefix(line, "unset "))
			if !ok {
				t.Errorf("unset=%v: line %q is not a comment, an assignment or empty", unset, line)
			}
		}
	}
}

func TestRenderShapes(t *testing.T) {
	v := Var{"K", "it's $x"}
	tests := []struct {
		sh         Shell
		set, unset string
	}{
		{Bash, `export K='it'\''s $x'`, "unset K"},
		{Zsh, `export K='it'\''s $x'`, "unset K"},
		{Sh, `export K='it'\''s $x'`, "unset K"},
		{Fish, `set -gx K 'it\'s $x';`, "set -e K;"},
		{Tcsh, `setenv K 'it'\''s $x';`, "unsetenv K;"},
		{PowerShell, `$Env:K = 'it''s $x'`, "Remove-Item Env:K -ErrorAction SilentlyContinue"},
		{Cmd, `SET K=it's $x`, "SET K="},
	}
	for _, tt := range tests {
		for _, unset := range []bool{false, true} {
			var buf bytes.Buffer
			doc := Document{Blocks: []Block{{Vars: []Var{v}}}}
			if err := Render(&buf, tt.sh, doc, RenderOptions{Unset: unset}); err != nil {
				t.Fatalf("%s: %v", tt.sh, err)
			}
			want := tt.set
			if unset {
				want = tt.unset
			}
			if got := buf.String(); got != want+"\n" {
				t.Errorf("%s unset=%v: got %q, want %q", tt.sh, unset, got, want+"\n")
			}
		}
	}
}

func TestHintQuotesCommandWords(t *testing.T) {
	argv := []string{"/opt/dev bundle/devbundle", "env", "--name", "it's"}
	tests := []struct {
		sh   Shell
		want string
	}{
		{Bash, `# eval "$('/opt/dev bundle/devbundle' env --name 'it'\''s')"`},
		{Fish, `# '/opt/dev bundle/devbundle' env --name 'it\'s' | source`},
		{Tcsh, `: 'eval "` + "`" + `'\''/opt/dev bundle/devbundle'\'' env --name '\''it'\''\'\'''\''s'\''` + "`" + `"';`},
		{PowerShell, `# & '/opt/dev bundle/devbundle' env --name 'it''s' | Invoke-Expression`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := Render(&buf, tt.sh, Document{ApplyCommand: argv}, RenderOptions{}); err != nil {
			t.Fatalf("%s: %v", tt.sh, err)
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if got := lines[len(lines)-1]; got != tt.want {
			t.Errorf("%s hint:\n got %s\nwant %s", tt.sh, got, tt.want)
		}
	}

	// cmd: words with spaces are double-quoted; ' cannot be shown inside
	// FOR /f's ('...').
	var buf bytes.Buffer
	err := Render(&buf, Cmd, Document{ApplyCommand: []string{`C:\Program Files\devbundle\devbundle.exe`, "env"}}, RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := `REM @FOR /f "tokens=*" %i IN ('"C:\Program Files\devbundle\devbundle.exe" env') DO @%i` + "\n"
	if !strings.HasSuffix(buf.String(), want) {
		t.Errorf("cmd hint: got %q, want suffix %q", buf.String(), want)
	}
	err = Render(&buf, Cmd, Document{ApplyCommand: argv}, RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), `"it's"`) {
		t.Errorf("cmd hint with ': got error %v, want one naming the argument", err)
	}
}

func TestNoHintWithoutApplyCommand(t *testing.T) {
	for _, sh := range Shells() {
		var buf bytes.Buffer
		doc := Document{Blocks: []Block{dockerBlock()}}
		if err := Render(&buf, sh, doc, RenderOptions{}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), hintHeader) {
			t.Errorf("%s: hint printed without an apply command:\n%s", sh, buf.String())
		}
	}
}

func TestPowerShellHasNoBlankLines(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: twoBlocks(), ApplyCommand: applyCommand(PowerShell, "", false)}
	if err := Render(&buf, PowerShell, doc, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "\n\n") || strings.HasPrefix(buf.String(), "\n") {
		t.Errorf("blank line in PowerShell output (Invoke-Expression fails on it):\n%s", buf.String())
	}
}

func TestPowerShellQuotesTypographicQuotes(t *testing.T) {
	got := quotePowerShell("a'b\u2018c\u2019d\u201ae\u201bf\u201cg")
	want := "'a''b\u2018\u2018c\u2019\u2019d\u201a\u201ae\u201b\u201bf\u201cg'"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestTcshEscapesBang(t *testing.T) {
	if got, want := quoteTcsh(`a!b\!c'd`), `'a\!b\\!c'\''d'`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name  string
		sh    Shell
		opts  RenderOptions
		value string
		want  []string // substrings of the error
	}{
		{"tcsh newline", Tcsh, RenderOptions{}, "a\nb", []string{`"V"`, "tcsh", "a newline", "--shell bash, zsh, sh or fish"}},
		{"powershell newline", PowerShell, RenderOptions{}, "a\nb", []string{`"V"`, "powershell", "a newline"}},
		{"powershell bad utf8", PowerShell, RenderOptions{}, "a\xffb", []string{`"V"`, "not valid UTF-8"}},
		{"script-readable newline", Bash, RenderOptions{ScriptReadable: true}, "a\nb", []string{`"V"`, "--script-readable", "a newline", "--json"}},
		{"escape sequence", Bash, RenderOptions{}, "red \x1b[31m", []string{`"V"`, `"\x1b"`, "--json"}},
		{"carriage return", Fish, RenderOptions{}, "a\rb", []string{`"V"`, `"\r"`}},
		{"nul", Zsh, RenderOptions{}, "a\x00b", []string{`"V"`, `"\x00"`}},
		{"script-readable escape", Bash, RenderOptions{ScriptReadable: true}, "\x1b", []string{`"V"`, `"\x1b"`}},
	}
	for _, c := range cmdUnsafe + "\n\t\r" {
		tests = append(tests, struct {
			name  string
			sh    Shell
			opts  RenderOptions
			value string
			want  []string
		}{"cmd " + string(c), Cmd, RenderOptions{}, "x" + string(c) + "y", []string{`"V"`, "cmd"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			doc := Document{Blocks: []Block{{Comment: []string{"header"}, Vars: []Var{{"OK", "fine"}, {"V", tt.value}}}}, ApplyCommand: []string{"devbundle", "env"}}
			err := Render(&buf, tt.sh, doc, tt.opts)
			if err == nil {
				t.Fatalf("no error; output:\n%s", buf.String())
			}
			if buf.Len() != 0 {
				t.Errorf("output written despite the error:\n%s", buf.String())
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not mention %q", msg, w)
				}
			}
		})
	}
}

func TestCmdRefusalNamesCharacter(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{{Vars: []Var{{"DOCKER_CERT_PATH", `C:\Users\100%\certs`}}}}}
	err := Render(&buf, Cmd, doc, RenderOptions{})
	want := `variable "DOCKER_CERT_PATH" cannot be set in cmd: its value contains "%"; use --shell bash, zsh, sh, fish, tcsh or powershell, or --json`
	if err == nil || err.Error() != want {
		t.Errorf("got error %v\nwant %s", err, want)
	}
}

func TestCmdAcceptsWindowsPaths(t *testing.T) {
	var buf bytes.Buffer
	v := `C:\Program Files (x86)\devbundle\machines\my vm\docker`
	doc := Document{Blocks: []Block{{Vars: []Var{{"DOCKER_CERT_PATH", v}, {"EMPTY", ""}, {"UTF8", "Jos\u00e9"}}}}}
	if err := Render(&buf, Cmd, doc, RenderOptions{}); err != nil {
		t.Fatal(err)
	}
	want := "SET DOCKER_CERT_PATH=" + v + "\nSET EMPTY=\nSET UTF8=Jos\u00e9\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

func TestCmdRefusesUnsafeComment(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{{Comment: []string{"a & b"}}}}
	err := Render(&buf, Cmd, doc, RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), `"a & b"`) {
		t.Errorf("got %v, want an error naming the comment line", err)
	}
	if err := Render(&buf, Bash, doc, RenderOptions{}); err != nil {
		t.Errorf("bash: %v", err)
	}
}

func TestCommentWithNewlineRefused(t *testing.T) {
	for _, sh := range Shells() {
		var buf bytes.Buffer
		err := Render(&buf, sh, Document{Blocks: []Block{{Comment: []string{"one\ntwo"}}}}, RenderOptions{})
		if err == nil {
			t.Errorf("%s: comment with a newline accepted:\n%s", sh, buf.String())
		}
	}
}

func TestAllProblemsReported(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{
		{Vars: []Var{{"1BAD", "x"}, {"A", "a\nb"}}},
		{Vars: []Var{{"B", "c\nd"}, {"A", "again"}}},
	}}
	err := Render(&buf, Tcsh, doc, RenderOptions{})
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 4 {
		t.Errorf("want 4 problems, one per line, got %d:\n%s", len(lines), err)
	}
	for _, want := range []string{`"1BAD"`, `"A" cannot be set`, `"B" cannot be set`, `"A" is listed more than once`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%s", want, err)
		}
	}
}

func TestUnsetIgnoresValues(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{{Vars: []Var{{"A", "has\nnewline and %"}}}}}
	if err := Render(&buf, Cmd, doc, RenderOptions{Unset: true}); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "SET A=\n" {
		t.Errorf("got %q", buf.String())
	}
}

func TestUnsetWithScriptReadableRefused(t *testing.T) {
	var buf bytes.Buffer
	err := Render(&buf, Bash, Document{Blocks: []Block{dockerBlock()}}, RenderOptions{Unset: true, ScriptReadable: true})
	if err == nil || !strings.Contains(err.Error(), "--unset") {
		t.Errorf("got %v", err)
	}
}

func TestRenderUnknownShell(t *testing.T) {
	var buf bytes.Buffer
	err := Render(&buf, Shell("nu"), Document{Blocks: []Block{dockerBlock()}}, RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), `"nu"`) || !strings.Contains(err.Error(), "powershell") {
		t.Errorf("got %v", err)
	}
}

func TestScriptReadableIsRaw(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{{Comment: []string{"c"}, Vars: []Var{{"A", "it's a=b $x"}}}}, ApplyCommand: []string{"x"}}
	if err := Render(&buf, Fish, doc, RenderOptions{ScriptReadable: true}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "A=it's a=b $x\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestRenderJSON(t *testing.T) {
	var buf bytes.Buffer
	doc := Document{Blocks: []Block{
		{Vars: []Var{{"B", "<&> \x1b \"q\"\nline"}, {"A", "日本"}}},
		{Vars: []Var{{"C", ""}}},
	}}
	if err := RenderJSON(&buf, doc); err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["A"] != "日本" || got["B"] != "<&> \x1b \"q\"\nline" || got["C"] != "" {
		t.Errorf("round trip: got %q", got)
	}
	if !strings.HasPrefix(buf.String(), "{\n  \"A\"") || strings.Contains(buf.String(), "\x1b") {
		t.Errorf("want sorted, indented, escaped JSON; got %s", buf.String())
	}

	for _, bad := range []Document{
		{Blocks: []Block{{Vars: []Var{{"A", "\xff"}}}}},
		{Blocks: []Block{{Vars: []Var{{"A", "\x00"}}}}},
		{Blocks: []Block{{Vars: []Var{{"A-B", "x"}}}}},
		{Blocks: []Block{{Vars: []Var{{"A", "x"}}}, {Vars: []Var{{"A", "y"}}}}},
	} {
		buf.Reset()
		if err := RenderJSON(&buf, bad); err == nil || buf.Len() != 0 {
			t.Errorf("%q: got error %v and output %q", bad.Blocks, err, buf.String())
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestRenderWriteError(t *testing.T) {
	err := Render(failWriter{}, Bash, Document{Blocks: []Block{dockerBlock()}}, RenderOptions{})
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("got %v", err)
	}
}

func TestHintArgumentsPowerShellCannotCarry(t *testing.T) {
	for _, arg := range []string{"bad \xff byte", "two\nlines"} {
		var buf bytes.Buffer
		err := Render(&buf, PowerShell, Document{ApplyCommand: []string{"devbundle", arg}}, RenderOptions{})
		if err == nil || buf.Len() != 0 {
			t.Errorf("%q: got error %v, output %q", arg, err, buf.String())
		}
	}
	if got, want := quotePowerShell("a\xffb'"), "'a\xffb'''"; got != want {
		t.Errorf("quotePowerShell changed invalid bytes: got %q, want %q", got, want)
	}
}

// TestGoldenWindows covers what PowerShell and cmd users see, with Windows
// paths (a space, parentheses, a ' in a user name for PowerShell).
func TestGoldenWindows(t *testing.T) {
	blk := dockerBlock()
	for _, sh := range []Shell{PowerShell, Cmd} {
		certs := `C:\Users\Dev User\AppData\Local\devbundle\machines\default\docker`
		if sh == PowerShell {
			certs = `C:\Users\D'Arcy\AppData\Local\devbundle\machines\default\docker`
		}
		blk.Vars[1].Value = certs
		vars := append(slices.Clone(blk.Vars), Var{"TOOLS_DIR", `C:\Program Files (x86)\devbundle\bin`})
		for _, unset := range []bool{false, true} {
			mode := "set"
			if unset {
				mode = "unset"
			}
			var buf bytes.Buffer
			doc := Document{
				Blocks:       []Block{{Comment: blk.Comment, Vars: vars}},
				ApplyCommand: applyCommand(sh, "docker", unset),
			}
			if err := Render(&buf, sh, doc, RenderOptions{Unset: unset}); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "windows."+mode+"."+string(sh)+".golden", buf.Bytes())
		}
	}
}

// TestGoldenWindowsPaths covers what a Windows user of the VirtualBox
// provider sees from `env` for docker and kubernetes together: a user
// name with a space in DOCKER_CERT_PATH and KUBECONFIG, in cmd and
// PowerShell. Backslashes pass through unchanged in both.
func TestGoldenWindowsPaths(t *testing.T) {
	const machine = `C:\Users\Ana Lee\AppData\Local\devbundle\machines\default`
	docker := dockerBlock()
	docker.Comment = []string{"docker env:"}
	docker.Vars[1].Value = machine + `\docker`
	kube := Block{
		Comment: []string{"kubernetes env:"},
		Vars:    []Var{{"KUBECONFIG", machine + `\kubernetes\kubeconfig`}},
	}
	for _, sh := range []Shell{PowerShell, Cmd} {
		for _, unset := range []bool{false, true} {
			mode := "set"
			if unset {
				mode = "unset"
			}
			var buf bytes.Buffer
			doc := Document{Blocks: []Block{docker, kube}, ApplyCommand: applyCommand(sh, "", unset)}
			if err := Render(&buf, sh, doc, RenderOptions{Unset: unset}); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, "windows-paths."+mode+"."+string(sh)+".golden", buf.Bytes())
			if unset {
				continue
			}
			for _, want := range map[Shell][]string{
				Cmd: {
					"SET DOCKER_CERT_PATH=" + machine + `\docker` + "\n",
					"SET KUBECONFIG=" + machine + `\kubernetes\kubeconfig` + "\n",
				},
				PowerShell: {
					`$Env:DOCKER_CERT_PATH = '` + machine + `\docker'`,
					`$Env:KUBECONFIG = '` + machine + `\kubernetes\kubeconfig'`,
				},
			}[sh] {
				if got := buf.String(); !strings.Contains(got, want) {
					t.Errorf("%s output lacks %q:\n%s", sh, want, got)
				}
			}
		}
	}
}
