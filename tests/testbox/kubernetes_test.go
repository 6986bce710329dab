package testbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestK8sDir(t *testing.T) {
	complete := writeBox(t, "")
	if err := os.WriteFile(filepath.Join(complete, KubectlFile), []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	noKubectl := writeBox(t, "") // a base box build is not a kubernetes one
	emptyKubectl := writeBox(t, "")
	if err := os.WriteFile(filepath.Join(emptyKubectl, KubectlFile), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		ci        bool
		dir       string
		wantDir   string
		wantSkip  string
		wantFatal string
	}{
		{name: "complete build", dir: complete, wantDir: complete},
		{name: "complete build in CI", ci: true, dir: complete, wantDir: complete},
		{name: "unset skips loudly", wantSkip: "VM TEST SKIPPED: DEVBUNDLE_TESTBOX_K8S_DIR is not set (DEVBUNDLE_TESTBOX_K8S_DIR=$(tests/box/cached.sh --kubernetes))"},
		{name: "unset fails in CI", ci: true, wantFatal: "CI=true: DEVBUNDLE_TESTBOX_K8S_DIR is not set"},
		{name: "base box skips", dir: noKubectl, wantSkip: "DEVBUNDLE_TESTBOX_K8S_DIR=\"" + noKubectl + "\" is not a complete test box build"},
		{name: "base box fails in CI", ci: true, dir: noKubectl, wantFatal: KubectlFile},
		{name: "empty kubectl fails in CI", ci: true, dir: emptyKubectl, wantFatal: "is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			if got := k8sDir(r, tt.ci, tt.dir); got != tt.wantDir {
				t.Errorf("k8sDir() = %q, want %q", got, tt.wantDir)
			}
			for _, c := range []struct{ kind, got, want string }{{"skip", r.skipped, tt.wantSkip}, {"fatal", r.fatal, tt.wantFatal}} {
				if c.want == "" && c.got != "" {
					t.Errorf("unexpected %s: %s", c.kind, c.got)
				}
				if c.want != "" && !strings.Contains(c.got, c.want) {
					t.Errorf("%s = %q, want it to contain %q", c.kind, c.got, c.want)
				}
			}
		})
	}
}
