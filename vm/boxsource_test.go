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

func TestBaseMAC(t *testing.T) {
	for _, tc := range []struct{ name, file, want string }{
		{"vagrant package", "Vagrant::Config.run do |config|\n  # comment\n  config.vm.base_mac = \"0800271A2B3C\"\nend\n\ninclude_vagrantfile = File.expand_path(\"../include/_Vagrantfile\", __FILE__)\nload include_vagrantfile if File.exist?(include_vagrantfile)\n", "0800271A2B3C"},
		{"configure v2, single quotes, CRLF", "Vagrant.configure('2') do |c|\r\n  c.vm.base_mac='080027D14C66'\r\nend\r\n", "080027D14C66"},
		{"spaces and trailing comment", "config.vm.base_mac   =   \"08:00:27:aa:bb:cc\"   # set by packer\n", "08:00:27:aa:bb:cc"},
		{"last wins", "config.vm.base_mac = \"080027000001\"\nconfig.vm.base_mac = \"080027000002\"\n", "080027000002"},
		{"commented out", "# config.vm.base_mac = \"080027000001\"\n", ""},
		{"=begin block", "=begin\nconfig.vm.base_mac = \"080027000001\"\n=end\n", ""},
		{"none", "Vagrant.configure(\"2\") do |config|\nend\n", ""},
		{"not a literal", "config.vm.base_mac = ENV['MAC']\n", ""},
		{"other setting", "config.vm.base_mac_extra = \"x\"\nconfig.ssh.base_mac = \"y\"\n", ""},
	} {
		if got := baseMAC(tc.file); got != tc.want {
			t.Errorf("%s: baseMAC = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A VirtualBox box gives its OVF, its VMDK disks and its Vagrantfile's MAC.
func TestImageOfVirtualBoxBox(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"box.ovf": "<Envelope/>", "box-disk001.vmdk": "x", "metadata.json": `{"provider":"virtualbox"}`,
		"Vagrantfile": "Vagrant::Config.run do |config|\n  config.vm.base_mac = \"0800271A2B3C\"\nend\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b := boxes.Box{Name: "a/b", Version: "1.0", Architecture: "amd64", Provider: "virtualbox", Dir: dir,
		Metadata: boxes.Metadata{Provider: "virtualbox"}}
	img, err := imageOf(b)
	if err != nil {
		t.Fatal(err)
	}
	if img.OVF != filepath.Join(dir, "box.ovf") || img.BaseMAC != "0800271A2B3C" || len(img.Disks) != 1 || img.Disks[0].Format != "vmdk" {
		t.Errorf("image = %+v", img)
	}
	if err := os.Remove(filepath.Join(dir, "Vagrantfile")); err != nil {
		t.Fatal(err)
	}
	if img, err := imageOf(b); err != nil || img.BaseMAC != "" {
		t.Errorf("without a Vagrantfile: %+v, %v", img, err)
	}
}
