package commands

import (
	"strings"
	"testing"
)

func TestExitCodesAndStreams(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderr   string
		noStdout bool
	}{
		{name: "version", args: []string{"version"}, code: 0, stdout: "devbundle 1.2.3-test ("},
		{name: "unknown command", args: []string{"frobnicate"}, code: 1, stderr: `error: unknown command "frobnicate"`, noStdout: true},
		{name: "unknown flag", args: []string{"version", "--nope"}, code: 1, stderr: "unknown flag: --nope", noStdout: true},
		{name: "extra argument", args: []string{"version", "x"}, code: 1, stderr: "takes no arguments", noStdout: true},
		{name: "completion needs a shell", args: []string{"completion"}, code: 1, stderr: "one shell name", noStdout: true},
		{name: "completion bash", args: []string{"completion", "bash"}, code: 0, stdout: "bash completion"},
		{name: "completion powershell", args: []string{"completion", "powershell"}, code: 0, stdout: "Register-ArgumentCompleter"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, out, errOut := testFactory(t, nil)
			code := run(t, f, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tt.code, errOut.String())
			}
			if !strings.Contains(out.String(), tt.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tt.stdout)
			}
			if !strings.Contains(errOut.String(), tt.stderr) {
				t.Errorf("stderr %q lacks %q", errOut.String(), tt.stderr)
			}
			if tt.noStdout && out.Len() > 0 {
				t.Errorf("errors must not print on stdout: %q", out.String())
			}
		})
	}
}

func TestMachineFlag(t *testing.T) {
	f, _, _ := testFactory(t, nil)
	if code := run(t, f, "-m", "dev", "version"); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if f.Machine != "dev" {
		t.Errorf("machine %q, want dev", f.Machine)
	}
}
