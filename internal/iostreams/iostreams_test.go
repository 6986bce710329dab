package iostreams

import (
	"strings"
	"testing"
)

func TestConfirm(t *testing.T) {
	tests := []struct {
		input string
		tty   bool
		want  bool
	}{
		{"y\n", true, true},
		{"YES\n", true, true},
		{"n\n", true, false},
		{"\n", true, false},
		{"y\n", false, false}, // no terminal: never asks, never agrees
	}
	for _, tt := range tests {
		s, in, _, errOut := Test()
		s.SetTTY(tt.tty, false, tt.tty)
		in.WriteString(tt.input)
		got, err := s.Confirm("Destroy?")
		if err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("input %q tty=%v: got %v, want %v", tt.input, tt.tty, got, tt.want)
		}
		if tt.tty && !strings.Contains(errOut.String(), "Destroy? [y/N]") {
			t.Errorf("question not shown on stderr: %q", errOut.String())
		}
	}
}

func TestMessagesGoToStderrOnly(t *testing.T) {
	s, _, out, errOut := Test()
	s.Infof("hello %d", 1)
	s.Warnf("careful")
	s.Errorf("bad")
	s.Debugf("hidden")
	s.SetDebug(true)
	s.Debugf("shown")
	st := s.StartStep("Booting")
	st.Done("ssh ready")
	if out.Len() != 0 {
		t.Errorf("stdout must stay empty, got %q", out.String())
	}
	got := errOut.String()
	for _, want := range []string{"hello 1\n", "warning: careful\n", "error: bad\n", "debug: shown\n", "==> Booting ... done ("} {
		if !strings.Contains(got, want) {
			t.Errorf("stderr lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "hidden") {
		t.Errorf("debug line printed without --debug")
	}
	if strings.Contains(got, "\x1b[") {
		t.Errorf("colour on a non-terminal")
	}
}
