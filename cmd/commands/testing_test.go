package commands

import (
	"bytes"
	"context"
	"testing"

	"github.com/devbundle/devbundle/cmd/cmdutil"
	"github.com/devbundle/devbundle/internal/iostreams"
)

// testFactory returns a Factory whose files all live under a temporary
// DEVBUNDLE_HOME and whose streams are buffers.
func testFactory(t *testing.T, env map[string]string) (f *cmdutil.Factory, out, errOut *bytes.Buffer) {
	t.Helper()
	streams, _, out, errOut := iostreams.Test()
	f = cmdutil.New(streams, "1.2.3-test")
	home := t.TempDir()
	wd := t.TempDir()
	f.Getenv = func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		if k == "DEVBUNDLE_HOME" {
			return home
		}
		return ""
	}
	f.Getwd = func() (string, error) { return wd, nil }
	return f, out, errOut
}

// run executes devbundle with args and returns the exit code.
func run(t *testing.T, f *cmdutil.Factory, args ...string) int {
	t.Helper()
	return Execute(context.Background(), f, args)
}
