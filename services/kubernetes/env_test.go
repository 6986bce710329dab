package kubernetes

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func envMachine(t *testing.T, dir string) *vm.Machine {
	raw, err := json.Marshal(State{Flavour: FlavourUnits, Version: "v1.33.13", Endpoint: "127.0.0.1:40443", GuestPort: 6443})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(KubeconfigPath(dir), []byte("apiVersion: v1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &vm.Machine{
		Name: "m1", Network: "user",
		Forwards: []vm.Forward{{Name: "kubernetes", GuestPort: 6443, HostIP: "127.0.0.1", HostPort: 40443}},
		Services: map[string]json.RawMessage{"kubernetes": raw},
	}
}

// TestEnvGolden renders the kubernetes block for every shell, with a
// folder name that needs quoting, against golden files.
func TestEnvGolden(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev's machines")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := envMachine(t, dir)
	info, err := New(Options{}).Env(m, dir)
	if err != nil {
		t.Fatal(err)
	}
	if info.Probe != "127.0.0.1:40443" || len(info.Vars) != 1 || info.Vars[0].Name != "KUBECONFIG" || info.Vars[0].Value != KubeconfigPath(dir) {
		t.Fatalf("env %+v", info)
	}
	// Golden files carry a fixed path, not the temporary folder.
	fixed := "/home/dev/.local/share/devbundle/machines/dev's vm/kubernetes/kubeconfig"
	doc := envfmt.Document{
		Blocks:       []envfmt.Block{{Comment: info.Comment, Vars: []envfmt.Var{{Name: "KUBECONFIG", Value: fixed}}}},
		ApplyCommand: []string{"devbundle", "env", "kubernetes"},
	}
	for _, sh := range envfmt.Shells() {
		for _, unset := range []bool{false, true} {
			mode := "set"
			if unset {
				mode = "unset"
			}
			var buf bytes.Buffer
			if err := envfmt.Render(&buf, sh, doc, envfmt.RenderOptions{Unset: unset}); err != nil {
				t.Fatalf("%s %s: %v", sh, mode, err)
			}
			checkGolden(t, "env."+mode+"."+string(sh)+".golden", buf.Bytes())
		}
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestEnvRefuses(t *testing.T) {
	cases := []struct {
		name  string
		setup func(m *vm.Machine, dir string)
		want  string
		hint  string
	}{
		{"never enabled", func(m *vm.Machine, dir string) { delete(m.Services, "kubernetes") }, "never enabled", "--services kubernetes"},
		{"unreadable state", func(m *vm.Machine, dir string) { m.Services["kubernetes"] = json.RawMessage(`{"version":`) }, "unreadable", ""},
		{"no forward", func(m *vm.Machine, dir string) { m.Forwards = nil }, "no forwarded port", "devbundle halt"},
		{"endpoint moved", func(m *vm.Machine, dir string) { m.Forwards[0].HostPort = 40444 }, "now at 127.0.0.1:40444", "devbundle up"},
		{"kubeconfig gone", func(m *vm.Machine, dir string) { os.Remove(KubeconfigPath(dir)) }, "kubeconfig of machine \"m1\" is missing", "devbundle up"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			m := envMachine(t, dir)
			tc.setup(m, dir)
			_, err := New(Options{}).Env(m, dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !errors.Is(err, dberr.ErrServiceUnavailable) {
				t.Errorf("exit %d, want 126", dberr.ExitCode(err))
			}
			if !strings.Contains(dberr.Hint(err), tc.hint) {
				t.Errorf("hint %q, want %q", dberr.Hint(err), tc.hint)
			}
		})
	}
}
