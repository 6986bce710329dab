//go:build unix

package clibins

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/envfmt"
)

// The output, evaluated by each real shell as the hint says, makes that
// shell find the installed binary first, even in a folder whose name needs
// quoting.
func TestRealShellsFindTheInstalledClient(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "it's a dir", "docker", "20.10.24", "linux-amd64")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "docker")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho installed docker\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A docker earlier on the PATH the output starts from, to be overtaken.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "docker"), []byte("#!/bin/sh\necho other docker\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := other + ":/usr/bin:/bin"
	doc := dockerResult(bin).Document(DocumentOptions{PATH: path, ListSeparator: ':', ApplyCommand: []string{"devbundle", "install-cli", "docker"}})

	for _, tc := range []struct {
		sh          envfmt.Shell
		bin, script string
		shellArgs   []string
	}{
		{envfmt.Bash, "bash", `eval "$(cat "$OUT")" && docker`, []string{"-c"}},
		{envfmt.Sh, "dash", `eval "$(cat "$OUT")" && docker`, []string{"-c"}},
		{envfmt.Zsh, "zsh", `eval "$(cat "$OUT")" && docker`, []string{"-c"}},
		{envfmt.Fish, "fish", `cat $OUT | source; and docker`, []string{"-c"}},
		{envfmt.Tcsh, "tcsh", "eval \"`cat $OUT`\" && docker", []string{"-f", "-c"}},
	} {
		t.Run(string(tc.sh), func(t *testing.T) {
			shell, err := exec.LookPath(tc.bin)
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s not installed (CI is set)", tc.bin)
				}
				t.Skipf("%s not installed", tc.bin)
			}
			var buf bytes.Buffer
			if err := envfmt.Render(&buf, tc.sh, doc, envfmt.RenderOptions{}); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(shell, append(tc.shellArgs, tc.script)...)
			cmd.Env = []string{"PATH=" + path, "OUT=" + out, "HOME=" + t.TempDir(), "LANG=C.UTF-8"}
			got, err := cmd.CombinedOutput()
			if err != nil || strings.TrimSpace(string(got)) != "installed docker" {
				t.Errorf("%s: %v: %q\noutput evaluated:\n%s", tc.bin, err, got, buf.String())
			}
		})
	}
}
