//go:build e2e

// Package e2e holds the tier of tests that boot real VMs under the host's
// libvirtd. Run it with the test box built:
//
//	.ci/setup-vm-host.sh
//	DEVBUNDLE_TESTBOX_DIR=$(tests/box/cached.sh) go test -tags e2e -p 1 -v ./tests/e2e/
package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/tests/testbox"
	"github.com/digitalocean/go-libvirt"
	"golang.org/x/crypto/ssh"
	"libvirt.org/go/libvirtxml"
)

const (
	smokeDomain   = "devbundle-e2e-smoke"
	testPool      = "devbundle-test"
	overlayVolume = "smoke.qcow2"
	helloLine     = "hello from devbundle"
	consoleTail   = 40
)

// TestSmokeBoxBoots boots the test box straight through libvirt (no
// devbundle code), logs in with its insecure key through a forward on
// 127.0.0.1 and checks what later tests rely on: dockerd runs and the
// devbundle/hello image prints its line.
func TestSmokeBoxBoots(t *testing.T) {
	dir := testbox.Dir(t)
	lv := testbox.Connect(t)
	signer := testbox.Signer(t, dir)
	port := testbox.FreePort(t)

	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()

	vm := bootBox(t, lv, filepath.Join(dir, testbox.ImageFile), port)

	var hostKey ssh.PublicKey
	bootCtx, bootCancel := context.WithTimeout(ctx, 5*time.Minute)
	defer bootCancel()
	client, err := testbox.WaitSSH(bootCtx, testbox.SSHOptions{
		Addr:   fmt.Sprintf("127.0.0.1:%d", port),
		Signer: signer,
		HostKey: func(key ssh.PublicKey) error {
			hostKey = key
			return nil
		},
	})
	if err != nil {
		t.Fatalf("the box did not let vagrant in over ssh: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	t.Logf("boot-to-sshd: %.1fs", time.Since(vm.started).Seconds())

	// First boot ends with the one-shot unit that imports devbundle/hello;
	// sshd does not wait for it, so wait for the whole boot here.
	if state, err := testbox.Run(ctx, client, "systemctl is-system-running --wait"); err != nil {
		failed, _ := testbox.Run(ctx, client, "systemctl --failed --no-legend --plain; sudo -n journalctl -b -p warning --no-pager | tail -n 30")
		t.Fatalf("the box's first boot did not complete cleanly (state %q): %v\n%s", strings.TrimSpace(state), err, failed)
	}
	t.Logf("boot-to-ready: %.1fs", time.Since(vm.started).Seconds())
	if analyze, err := testbox.Run(ctx, client, "systemd-analyze time"); err == nil {
		t.Logf("guest's own count: %s", strings.TrimSpace(analyze))
	}

	checks := []struct {
		name string
		cmd  string
		want func(out string) error
	}{
		{"dockerd is active", "systemctl is-active docker.service", equals("active")},
		{"devbundle/hello was imported", "systemctl is-active devbundle-hello.service", equals("active")},
		{"devbundle/hello prints its line", "docker run --rm devbundle/hello", equals(helloLine)},
		{"dockerd listens on no TCP port", "sudo -n ss -Htlnp", lacks("dockerd")},
		{"os-release names the box variant", `. /etc/os-release && echo "$VARIANT_ID"`, equals("devbundle-testbox")},
		{"vagrant has passwordless sudo", "sudo -n id -u", equals("0")},
		{"vagrant is in the docker group", "id -nG", hasWord("docker")},
		{"SSH host keys were made on this boot", "systemctl show --property=ConditionResult --value devbundle-ssh-hostkeys.service", equals("yes")},
		{"the host key presented is the VM's own", "cat /etc/ssh/ssh_host_*_key.pub", holdsKey(&hostKey)},
		// The image ships an empty machine-id; systemd fills it on first boot,
		// from the VM's UUID under libvirt.
		{"machine-id was made on this boot", "cat /etc/machine-id", equals(vm.uuid)},
	}
	for _, c := range checks {
		out, err := testbox.Run(ctx, client, c.cmd)
		if err == nil {
			err = c.want(strings.TrimSpace(out))
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// bootBox starts the box from a qcow2 overlay on image, with user-mode
// networking forwarding 127.0.0.1:sshPort to the guest's port 22 and the
// serial console written to a file. Everything goes away when the test
// ends; a failed test prints the end of the console log first.
func bootBox(t *testing.T, lv *libvirt.Libvirt, image string, sshPort int) bootedBox {
	t.Helper()
	removeStale(t, lv)

	work := reachableTempDir(t)
	poolDir := filepath.Join(work, "pool")
	if err := os.Mkdir(poolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	console := filepath.Join(work, "console.log")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last %d lines of the console log %s:\n%s", consoleTail, console, tailLines(console, consoleTail))
		}
	})

	poolXML, err := (&libvirtxml.StoragePool{
		Type:   "dir",
		Name:   testPool,
		Target: &libvirtxml.StoragePoolTarget{Path: poolDir},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// A transient pool: destroying it is all the removal it needs.
	pool, err := lv.StoragePoolCreateXML(poolXML, libvirt.StoragePoolCreateNormal)
	if err != nil {
		t.Fatalf("creating storage pool %q in %q: %v", testPool, poolDir, err)
	}
	t.Cleanup(func() {
		if err := lv.StoragePoolDestroy(pool); err != nil {
			t.Errorf("removing storage pool %q: %v", testPool, err)
		}
	})

	size, err := qcow2VirtualSize(image)
	if err != nil {
		t.Fatal(err)
	}
	volXML, err := (&libvirtxml.StorageVolume{
		Name:     overlayVolume,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: size},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"}},
		BackingStore: &libvirtxml.StorageVolumeBackingStore{
			Path:   image,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: "qcow2"},
		},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	vol, err := lv.StorageVolCreateXML(pool, volXML, 0)
	if err != nil {
		t.Fatalf("creating overlay %q on %q: %v", overlayVolume, image, err)
	}
	t.Cleanup(func() {
		if err := lv.StorageVolDelete(vol, libvirt.StorageVolDeleteNormal); err != nil {
			t.Errorf("deleting overlay %q: %v", overlayVolume, err)
		}
	})

	serialPort := uint(0)
	domXML, err := (&libvirtxml.Domain{
		Type:   "qemu", // TCG: /dev/kvm on these hosts is paravirtual and hangs a stock kernel
		Name:   smokeDomain,
		Memory: &libvirtxml.DomainMemory{Value: 1, Unit: "GiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: 2},
		OS: &libvirtxml.DomainOS{
			Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{{
				Device: "disk",
				Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
				Source: &libvirtxml.DomainDiskSource{
					Volume: &libvirtxml.DomainDiskSourceVolume{Pool: testPool, Volume: overlayVolume},
				},
				Target: &libvirtxml.DomainDiskTarget{Dev: "vda", Bus: "virtio"},
			}},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: console}},
				Target: &libvirtxml.DomainSerialTarget{Port: &serialPort},
			}},
		},
		// libvirt 9.0 cannot forward ports of user-mode networking itself,
		// so the NIC is passed to QEMU directly. No libvirt network is used.
		QEMUCommandline: &libvirtxml.DomainQEMUCommandline{
			Args: []libvirtxml.DomainQEMUCommandlineArg{
				{Value: "-netdev"},
				{Value: fmt.Sprintf("user,id=net0,hostfwd=tcp:127.0.0.1:%d-:22", sshPort)},
				{Value: "-device"},
				{Value: "virtio-net-pci,netdev=net0,bus=pci.0,addr=0x10"},
			},
		},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	dom, err := lv.DomainDefineXML(domXML)
	if err != nil {
		t.Fatalf("defining domain %q: %v", smokeDomain, err)
	}
	t.Cleanup(func() {
		if err := lv.DomainDestroy(dom); err != nil && !hasCode(err, libvirt.ErrOperationInvalid) {
			t.Errorf("stopping domain %q: %v", smokeDomain, err)
		}
		if err := lv.DomainUndefine(dom); err != nil {
			t.Errorf("undefining domain %q: %v", smokeDomain, err)
		}
	})
	started := time.Now()
	if err := lv.DomainCreate(dom); err != nil {
		t.Fatalf("starting domain %q: %v", smokeDomain, err)
	}
	return bootedBox{started: started, uuid: hex.EncodeToString(dom.UUID[:])}
}

type bootedBox struct {
	started time.Time // when the domain was started
	uuid    string    // the domain's UUID, hex without dashes
}

// removeStale removes what a killed earlier run left: the smoke domain and
// the test pool with its volumes.
func removeStale(t *testing.T, lv *libvirt.Libvirt) {
	t.Helper()
	if dom, err := lv.DomainLookupByName(smokeDomain); err == nil {
		t.Logf("removing domain %q left by an earlier run", smokeDomain)
		if err := lv.DomainDestroy(dom); err != nil && !hasCode(err, libvirt.ErrOperationInvalid) {
			t.Fatalf("stopping stale domain %q: %v", smokeDomain, err)
		}
		if err := lv.DomainUndefine(dom); err != nil {
			t.Fatalf("undefining stale domain %q: %v", smokeDomain, err)
		}
	} else if !hasCode(err, libvirt.ErrNoDomain) {
		t.Fatalf("looking up domain %q: %v", smokeDomain, err)
	}

	pool, err := lv.StoragePoolLookupByName(testPool)
	if hasCode(err, libvirt.ErrNoStoragePool) {
		return
	}
	if err != nil {
		t.Fatalf("looking up storage pool %q: %v", testPool, err)
	}
	t.Logf("removing storage pool %q left by an earlier run", testPool)
	if active, err := lv.StoragePoolIsActive(pool); err == nil && active == 1 {
		vols, _, err := lv.StoragePoolListAllVolumes(pool, 1, 0)
		if err != nil {
			t.Fatalf("listing volumes of stale pool %q: %v", testPool, err)
		}
		for _, v := range vols {
			if err := lv.StorageVolDelete(v, libvirt.StorageVolDeleteNormal); err != nil {
				t.Fatalf("deleting volume %q of stale pool %q: %v", v.Name, testPool, err)
			}
		}
		if err := lv.StoragePoolDestroy(pool); err != nil {
			t.Fatalf("stopping stale pool %q: %v", testPool, err)
		}
	}
	// Only a persistent pool can be undefined; ours are transient.
	if err := lv.StoragePoolUndefine(pool); err != nil && !hasCode(err, libvirt.ErrNoStoragePool) && !hasCode(err, libvirt.ErrOperationInvalid) {
		t.Fatalf("undefining stale pool %q: %v", testPool, err)
	}
}

// reachableTempDir makes a temporary folder that libvirt's QEMU, running as
// the libvirt-qemu user, can reach, and removes it when the test ends.
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "devbundle-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %q: %v", dir, err)
		}
	})
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm()&0o001 == 0 {
			t.Fatalf("libvirt-qemu cannot reach %q because %q is not world-searchable; set TMPDIR to a folder it can reach, such as /tmp", dir, p)
		}
		if p == filepath.Dir(p) {
			break
		}
	}
	return dir
}

// qcow2VirtualSize reads the virtual disk size from a qcow2 header.
func qcow2VirtualSize(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("opening the box image: %w", err)
	}
	defer f.Close()
	var header [32]byte
	if _, err := io.ReadFull(f, header[:]); err != nil {
		return 0, fmt.Errorf("reading the qcow2 header of %q: %w", path, err)
	}
	if !bytes.Equal(header[:4], []byte("QFI\xfb")) {
		return 0, fmt.Errorf("%q is not a qcow2 image; rebuild the box with tests/box/cached.sh", path)
	}
	return binary.BigEndian.Uint64(header[24:32]), nil
}

func hasCode(err error, code libvirt.ErrorNumber) bool {
	var lerr libvirt.Error
	return errors.As(err, &lerr) && lerr.Code == uint32(code)
}

// tailLines returns the last n lines of a console log, without carriage
// returns and terminal colour codes.
func tailLines(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the console log: %v)", err)
	}
	text := regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]").ReplaceAllString(string(data), "")
	text = strings.ReplaceAll(text, "\r", "")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func equals(want string) func(string) error {
	return func(got string) error {
		if got != want {
			return fmt.Errorf("got %q, want %q", got, want)
		}
		return nil
	}
}

func lacks(word string) func(string) error {
	return func(got string) error {
		if strings.Contains(got, word) {
			return fmt.Errorf("got %q, want no %q in it", got, word)
		}
		return nil
	}
}

func hasWord(word string) func(string) error {
	return func(got string) error {
		for _, w := range strings.Fields(got) {
			if w == word {
				return nil
			}
		}
		return fmt.Errorf("got %q, want it to include %q", got, word)
	}
}

// holdsKey checks that the output of cat on the guest's public host keys
// includes the key the guest presented to the SSH client.
func holdsKey(presented *ssh.PublicKey) func(string) error {
	return func(got string) error {
		if *presented == nil {
			return errors.New("the ssh client recorded no host key")
		}
		want := string(bytes.TrimSpace(ssh.MarshalAuthorizedKey(*presented)))
		for _, line := range strings.Split(got, "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0]+" "+f[1] == want {
				return nil
			}
		}
		return fmt.Errorf("presented host key %s is not among the guest's host keys:\n%s", ssh.FingerprintSHA256(*presented), got)
	}
}
