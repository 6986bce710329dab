package services

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/devbundle/devbundle/vm/sshc"
)

// RunRoot runs script as root in the guest (sudo -n sh -c), with args as
// $1..., and returns its exit status, its output and its trimmed stderr.
// err is set only when the command could not run at all.
func RunRoot(ctx context.Context, g Guest, script string, args ...string) (code int, stdout, stderr string, err error) {
	cmd := "sudo -n sh -c " + sshc.Quote(script) + " devbundle"
	for _, a := range args {
		cmd += " " + sshc.Quote(a)
	}
	var out, errOut bytes.Buffer
	code, err = g.Run(ctx, cmd, sshc.RunOptions{Stdout: &out, Stderr: &errOut})
	return code, out.String(), strings.TrimSpace(errOut.String()), err
}

// MustRoot is RunRoot that fails on a non-zero exit, naming what it did.
func MustRoot(ctx context.Context, g Guest, what, script string, args ...string) (string, error) {
	code, out, stderr, err := RunRoot(ctx, g, script, args...)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if code != 0 {
		return "", fmt.Errorf("%s: exit status %d: %s", what, code, Tail(stderr, 800))
	}
	return out, nil
}

// SudoHint turns a failed sudo -n into the message that says what the box
// lacks; other messages come back unchanged.
func SudoHint(stderr string) (string, bool) {
	if strings.Contains(stderr, "password is required") || strings.Contains(stderr, "sudo:") {
		return fmt.Sprintf("sudo -n failed (%s); the login user needs passwordless sudo, as Vagrant boxes give it", stderr), true
	}
	return stderr, false
}

// Tail returns the end of s, at most n bytes, marked with "..." when cut.
func Tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
