package libvirt

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// qcow2Header writes the first bytes of a qcow2 image of virtual size
// vsize (what a box's box.img starts with) followed by filler.
func qcow2Header(t *testing.T, vsize uint64, backing bool) string {
	t.Helper()
	hdr := make([]byte, 4096)
	copy(hdr, "QFI\xfb")
	binary.BigEndian.PutUint32(hdr[4:], 3)
	if backing {
		binary.BigEndian.PutUint64(hdr[8:], 512)
	}
	binary.BigEndian.PutUint32(hdr[20:], 16)
	binary.BigEndian.PutUint64(hdr[24:], vsize)
	p := filepath.Join(t.TempDir(), "box.img")
	if err := os.WriteFile(p, hdr, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImageInfo(t *testing.T) {
	q := qcow2Header(t, 10<<30, false)
	size, vsize, err := imageInfo(q, "qcow2")
	if err != nil || size != 4096 || vsize != 10<<30 {
		t.Fatalf("imageInfo(qcow2) = %d %d %v", size, vsize, err)
	}
	raw := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(raw, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	if size, vsize, err := imageInfo(raw, "raw"); err != nil || size != 8192 || vsize != 8192 {
		t.Fatalf("imageInfo(raw) = %d %d %v", size, vsize, err)
	}
	for name, c := range map[string]struct {
		path, format, want string
	}{
		"raw said qcow2": {raw, "qcow2", "is not (no qcow2 header)"},
		"qcow2 said raw": {q, "raw", "is qcow2"},
		"vmdk":           {raw, "vmdk", `format "vmdk"`},
		"backing file":   {qcow2Header(t, 1<<30, true), "qcow2", "backing file"},
		"missing":        {filepath.Join(t.TempDir(), "nope"), "qcow2", "box disk"},
	} {
		if _, _, err := imageInfo(c.path, c.format); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want %q", name, err, c.want)
		}
	}
}

func TestVolumeNames(t *testing.T) {
	a := baseVolumeName("debian/bookworm64 12.20240503.1 amd64 libvirt box.img")
	if a != baseVolumeName("debian/bookworm64 12.20240503.1 amd64 libvirt box.img") {
		t.Fatal("base name is not stable")
	}
	if a == baseVolumeName("debian/bookworm64 12.20240601.1 amd64 libvirt box.img") {
		t.Fatal("two versions share a base volume")
	}
	if !strings.HasPrefix(a, basePrefix) || strings.ContainsAny(a, "/ ") {
		t.Fatalf("base name %q", a)
	}
	if got := overlayName("web", 1); got != "devbundle-web-vdb.qcow2" {
		t.Fatalf("overlayName = %q", got)
	}
	for _, c := range []struct {
		vol, machine string
		want         bool
	}{
		{"devbundle-a-vda.qcow2", "a", true},
		{"devbundle-a-console.log", "a", true},
		{"devbundle-a-vdb-vda.qcow2", "a", false}, // machine "a-vdb"'s
		{"devbundle-a-vdb-vda.qcow2", "a-vdb", true},
		{"devbundle-a.b-vda.qcow2", "a", false},
		{"devbundle-axb-vda.qcow2", "a.b", false}, // '.' is literal
		{baseVolumeName("k"), "a", false},
	} {
		if got := ownedBy(c.vol, c.machine); got != c.want {
			t.Errorf("ownedBy(%q, %q) = %v", c.vol, c.machine, got)
		}
	}
}

func TestOverlayXML(t *testing.T) {
	b := baseImage{name: "devbundle-base-x.img", path: "/pool/devbundle-base-x.img", format: "qcow2", virtualSize: 10 << 30}
	for _, c := range []struct{ asked, want uint64 }{{0, 10 << 30}, {5 << 30, 10 << 30}, {40 << 30, 40 << 30}} {
		doc, err := overlayXML("devbundle-m-vda.qcow2", b, c.asked)
		if err != nil {
			t.Fatal(err)
		}
		var v libvirtxml.StorageVolume
		if err := v.Unmarshal(doc); err != nil {
			t.Fatal(err)
		}
		if v.Name != "devbundle-m-vda.qcow2" || v.Capacity.Value != c.want || v.Target.Format.Type != "qcow2" {
			t.Errorf("asked %d: volume %+v capacity %+v", c.asked, v, v.Capacity)
		}
		if v.BackingStore == nil || v.BackingStore.Path != b.path || v.BackingStore.Format.Type != "qcow2" {
			t.Errorf("backing store %+v", v.BackingStore)
		}
	}
}

func TestPoolXML(t *testing.T) {
	doc, err := poolXML("devbundle", "/var/lib/libvirt/images/devbundle")
	if err != nil {
		t.Fatal(err)
	}
	var p libvirtxml.StoragePool
	if err := p.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if p.Type != "dir" || p.Name != "devbundle" || p.Target.Path != "/var/lib/libvirt/images/devbundle" || p.Target.Permissions.Mode != "0711" {
		t.Fatalf("pool %+v target %+v", p, p.Target)
	}
}

func TestPoolDir(t *testing.T) {
	sys, _ := parseTarget("qemu:///system", envOf(nil), "linux")
	ses, _ := parseTarget("qemu:///session", envOf(map[string]string{"XDG_RUNTIME_DIR": "/run/user/1"}), "linux")
	for _, c := range []struct {
		t    target
		env  map[string]string
		dir  string
		want string
	}{
		{sys, nil, "", "/var/lib/libvirt/images/devbundle"},
		{sys, nil, "/srv/pool", "/srv/pool"},
		{ses, map[string]string{"XDG_DATA_HOME": "/d"}, "", "/d/devbundle/libvirt-pool"},
		{ses, map[string]string{"HOME": "/home/u"}, "", "/home/u/.local/share/devbundle/libvirt-pool"},
	} {
		p := &Provider{t: c.t, opts: Options{PoolDir: c.dir, Getenv: envOf(c.env)}}
		got, err := p.poolDir()
		if err != nil || got != c.want {
			t.Errorf("poolDir = %q %v, want %q", got, err, c.want)
		}
	}
	p := &Provider{t: ses, opts: Options{Getenv: envOf(nil)}}
	if _, err := p.poolDir(); err == nil {
		t.Error("session pool folder found without HOME")
	}
}

func TestValidateSpec(t *testing.T) {
	good := vm.Spec{Name: "m", Disks: []vm.Disk{{Path: "/b", Key: "k"}}, CPUs: 1, MemoryMiB: 512}
	if err := validateSpec(good); err != nil {
		t.Fatal(err)
	}
	err := validateSpec(vm.Spec{Name: "bad name", CPUs: 0, MemoryMiB: 64, DiskGiB: -1})
	if err == nil {
		t.Fatal("bad spec accepted")
	}
	for _, want := range []string{"bad name", "no disk", "--cpus", "--memory", "negative"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
}

func TestIsLibvirtErr(t *testing.T) {
	if isLibvirtErr(errors.New("x"), 42) || isLibvirtErr(nil, 42) {
		t.Fatal("plain errors taken for libvirt's")
	}
}
