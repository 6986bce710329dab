package commands

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBox writes a small gzip'd libvirt box to dir and returns its path.
func writeBox(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "tiny.box")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for name, body := range map[string]string{
		"metadata.json": `{"provider":"libvirt","format":"qcow2","virtual_size":1}`,
		"box.img":       strings.Repeat("disk", 1024),
		"Vagrantfile":   "# empty\n",
	} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBoxAddListRemoveFromFile(t *testing.T) {
	f, out, errOut := testFactory(t, nil)
	box := writeBox(t, t.TempDir())

	if code := run(t, f, "box", "add", box, "--name", "me/tiny"); code != 0 {
		t.Fatalf("box add: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "added box me/tiny") {
		t.Errorf("no confirmation on stderr: %q", errOut.String())
	}
	if out.Len() != 0 {
		t.Errorf("box add printed on stdout: %q", out.String())
	}

	if code := run(t, f, "box", "list", "--json"); code != 0 {
		t.Fatalf("box list: exit %d: %s", code, errOut.String())
	}
	var list []struct{ Name, Version, Provider, Dir string }
	if err := json.Unmarshal(out.Bytes(), &list); err != nil {
		t.Fatalf("box list --json: %v: %q", err, out.String())
	}
	if len(list) != 1 || list[0].Name != "me/tiny" || list[0].Version != "0" || list[0].Provider != "libvirt" {
		t.Fatalf("list = %+v", list)
	}
	if data, err := os.ReadFile(filepath.Join(list[0].Dir, "box.img")); err != nil || len(data) != 4096 {
		t.Errorf("box.img not unpacked whole: %v, %d bytes", err, len(data))
	}

	out.Reset()
	if code := run(t, f, "box", "add", box, "--name", "me/tiny"); code != 1 {
		t.Errorf("second add of the same box: exit %d, want 1", code)
	}
	if code := run(t, f, "box", "remove", "me/tiny"); code != 0 {
		t.Fatalf("box remove: exit %d: %s", code, errOut.String())
	}
	out.Reset()
	if code := run(t, f, "box", "list", "--json"); code != 0 || strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("after remove: exit %d, list %q", code, out.String())
	}
}

func TestBoxAddRefusesBadChecksum(t *testing.T) {
	f, out, errOut := testFactory(t, nil)
	box := writeBox(t, t.TempDir())
	code := run(t, f, "box", "add", box, "--name", "me/tiny", "--checksum", "sha256:"+strings.Repeat("0", 64))
	if code != 1 {
		t.Fatalf("tampered box accepted: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "checksum") {
		t.Errorf("error does not name the checksum: %q", errOut.String())
	}
	out.Reset()
	run(t, f, "box", "list", "--json")
	if strings.TrimSpace(out.String()) != "[]" {
		t.Errorf("a refused box entered the store: %q", out.String())
	}
}

func TestStatusNotCreated(t *testing.T) {
	f, out, _ := testFactory(t, nil)
	if code := run(t, f, "status", "--json"); code != 0 {
		t.Fatalf("status of a machine never created must exit 0, got %d", code)
	}
	var st struct{ Name, State string }
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.State != "not created" || st.Name != "default" {
		t.Errorf("status = %+v (%v)", st, err)
	}
}

func TestCommandsNeedingARunningMachineExit3(t *testing.T) {
	for _, args := range [][]string{{"ssh", "--", "true"}, {"ip"}, {"box", "version"}, {"ssh-config"}} {
		f, out, errOut := testFactory(t, nil)
		if code := run(t, f, args...); code != 3 {
			t.Errorf("%v: exit %d, want 3 (stderr %q)", args, code, errOut.String())
		}
		if !strings.Contains(errOut.String(), `machine "default" is not running; run "devbundle up"`) {
			t.Errorf("%v: stderr %q", args, errOut.String())
		}
		if out.Len() != 0 {
			t.Errorf("%v: stdout %q", args, out.String())
		}
	}
}

func TestDestroyWithoutTerminalNeedsForce(t *testing.T) {
	f, _, errOut := testFactory(t, nil)
	if code := run(t, f, "destroy"); code != 1 || !strings.Contains(errOut.String(), "--force") {
		t.Errorf("exit %d, stderr %q", code, errOut.String())
	}
}
