package envfmt

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// expectRefused says, independently of the package's own checks, whether
// sh must refuse value (see the package documentation).
func expectRefused(sh Shell, value string) bool {
	for _, r := range value {
		if (r < 0x20 && r != '\t' && r != '\n') || r == 0x7f {
			return true
		}
	}
	switch sh {
	case Tcsh:
		return strings.Contains(value, "\n")
	case PowerShell:
		return strings.Contains(value, "\n") || !utf8.ValidString(value)
	case Cmd:
		if !utf8.ValidString(value) {
			return true
		}
		for _, r := range value {
			if r < 0x20 || strings.ContainsRune(`%^&|<>"!`, r) {
				return true
			}
		}
	}
	return false
}

// statement splits a rendered one-variable output into the quoted word
// between prefix and suffix.
func statement(t *testing.T, out, prefix, suffix string) string {
	t.Helper()
	if !strings.HasPrefix(out, prefix) || !strings.HasSuffix(out, suffix+"\n") {
		t.Fatalf("output %q is not %q...%q", out, prefix, suffix)
	}
	return strings.TrimSuffix(strings.TrimPrefix(out, prefix), suffix+"\n")
}

func fuzzSeeds(f *testing.F) {
	for _, h := range hostileValues("/tmp/x") {
		f.Add(h.value)
	}
	for _, s := range []string{"", "'", `\`, "!", `\!`, "\n", "\r", "\x00", "\xff", "\u2019", "''", `'\''`, "a b", "%x%", "é"} {
		f.Add(s)
	}
}

// FuzzQuote renders one variable (and the same text as a comment and as a
// hint argument) for every shell, and checks that the output is refused
// exactly when the rules say so, and otherwise parses back, with the
// strict test parsers, to the exact value with nothing left unquoted.
func FuzzQuote(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, value string) {
		for _, sh := range Shells() {
			var buf bytes.Buffer
			err := Render(&buf, sh, Document{Blocks: []Block{{Vars: []Var{{"V", value}}}}}, RenderOptions{})
			if want := expectRefused(sh, value); want != (err != nil) {
				t.Fatalf("%s: refused=%v (%v), want refused=%v for %q", sh, err != nil, err, want, value)
			}
			if err != nil {
				if buf.Len() != 0 || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), `"V"`) {
					t.Fatalf("%s: bad refusal: output %q, error %q", sh, buf.String(), err)
				}
				continue
			}
			out := buf.String()
			var got string
			var perr error
			switch sh {
			case Bash, Zsh, Sh:
				got, perr = parsePOSIXWord(statement(t, out, "export V=", ""))
			case Fish:
				got, perr = parseFishWord(statement(t, out, "set -gx V ", ";"))
			case Tcsh:
				got, perr = parseTcshWord(statement(t, out, "setenv V ", ";"))
			case PowerShell:
				got, perr = parsePowerShellWord(statement(t, out, "$Env:V = ", ""))
			case Cmd:
				got = statement(t, out, "SET V=", "")
			}
			if perr != nil {
				t.Fatalf("%s: output %q does not parse: %v", sh, out, perr)
			}
			if got != value {
				t.Fatalf("%s: output %q parses to %q, want %q", sh, out, got, value)
			}
			if (sh == Tcsh || sh == PowerShell || sh == Cmd) && strings.Count(out, "\n") != 1 {
				t.Fatalf("%s: output %q spans lines", sh, out)
			}
		}

		// Script-readable: NAME=value on one line, or a refusal.
		var buf bytes.Buffer
		err := Render(&buf, Bash, Document{Blocks: []Block{{Vars: []Var{{"V", value}}}}}, RenderOptions{ScriptReadable: true})
		if want := expectRefused(Tcsh, value); want != (err != nil) {
			t.Fatalf("script-readable: refused=%v (%v), want %v", err != nil, err, want)
		}
		if err == nil && buf.String() != "V="+value+"\n" {
			t.Fatalf("script-readable: got %q", buf.String())
		}

		checkFuzzComment(t, value)
		checkFuzzHint(t, value)
	})
}

// checkFuzzComment renders value as a header comment: it must stay one
// comment line (or be refused).
func checkFuzzComment(t *testing.T, text string) {
	for _, sh := range Shells() {
		var buf bytes.Buffer
		err := Render(&buf, sh, Document{Blocks: []Block{{Comment: []string{text}}}}, RenderOptions{})
		want := expectRefused(sh, text) || strings.Contains(text, "\n")
		if want != (err != nil) {
			t.Fatalf("%s comment %q: refused=%v (%v), want %v", sh, text, err != nil, err, want)
		}
		if err != nil {
			continue
		}
		out := buf.String()
		if strings.Count(out, "\n") != 1 {
			t.Fatalf("%s comment %q spans lines: %q", sh, text, out)
		}
		line := strings.TrimSuffix(out, "\n")
		var got string
		var perr error
		switch sh {
		case Tcsh:
			got, perr = parseTcshWord(statement(t, out, ": ", ";"))
		case Cmd:
			got = strings.TrimPrefix(strings.TrimPrefix(line, "REM"), " ")
		default:
			got = strings.TrimPrefix(strings.TrimPrefix(line, "#"), " ")
			if !strings.HasPrefix(line, "#") {
				t.Fatalf("%s comment line %q does not start with #", sh, line)
			}
		}
		if perr != nil || got != text {
			t.Fatalf("%s comment %q rendered as %q (%v)", sh, text, line, perr)
		}
	}
}

// checkFuzzHint passes value as an argument of the apply command: the
// POSIX, fish and tcsh hints must show it as one word that parses back.
func checkFuzzHint(t *testing.T, arg string) {
	doc := Document{ApplyCommand: []string{"devbundle", arg}}
	tests := []struct {
		sh             Shell
		prefix, suffix string
		parse          func(string) (string, error)
	}{
		{Bash, `# eval "$(devbundle `, `)"`, parsePOSIXWord},
		{Fish, `# devbundle `, ` | source`, parseFishWord},
		{PowerShell, `# & devbundle `, ` | Invoke-Expression`, parsePowerShellWord},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := Render(&buf, tt.sh, doc, RenderOptions{}); err != nil {
			continue // refusals of hint arguments are covered by unit tests
		}
		lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%s hint for %q is not two lines: %q", tt.sh, arg, buf.String())
		}
		word := statement(t, lines[1]+"\n", tt.prefix, tt.suffix)
		if word == arg {
			bare := `^[A-Za-z0-9_./:=,@+-]+$`
			if tt.sh == PowerShell {
				bare = `^[A-Za-z0-9_./:=,@+\\-]+$`
			}
			if !regexp.MustCompile(bare).MatchString(arg) {
				t.Fatalf("%s hint shows %q unquoted", tt.sh, arg)
			}
			continue
		}
		got, err := tt.parse(word)
		if err != nil || got != arg {
			t.Fatalf("%s hint word %q for %q parses to %q (%v)", tt.sh, word, arg, got, err)
		}
	}
}
