package vm

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/devbundle/devbundle/boxes"
)

// The keys ForgetBox removes must be the keys machines were created with.
func TestDiskKeysMatchImageKeys(t *testing.T) {
	for _, md := range []boxes.Metadata{
		{Provider: "libvirt", Format: "qcow2"},
		{Provider: "libvirt", Disks: []boxes.Disk{{Path: "box_0.img"}, {Path: "box_1.img", Format: "raw"}}},
	} {
		dir := t.TempDir()
		files := []string{"box.img"}
		if len(md.Disks) > 0 {
			files = []string{"box_0.img", "box_1.img"}
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		b := boxes.Box{Name: "a/b", Version: "1.0", Architecture: "amd64", Provider: "libvirt", Dir: dir, Metadata: md,
			Source: boxes.Source{Checksum: "sha256:00"}}
		img, err := imageOf(b)
		if err != nil {
			t.Fatal(err)
		}
		keys := diskKeys(b)
		if len(keys) != len(img.Disks) {
			t.Fatalf("%d keys for %d disks", len(keys), len(img.Disks))
		}
		for i, d := range img.Disks {
			if d.Key != keys[i] {
				t.Errorf("disk %d: image key %q, forget key %q", i, d.Key, keys[i])
			}
		}
	}
}
