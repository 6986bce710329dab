//go:build e2e

package libvirt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// These tests talk to the real libvirtd at qemu:///system (start it with
// "virtlogd -d; libvirtd -d" where systemd does not run). Run them under
// the machine-wide VM lock:
//
//	flock /tmp/devbundle-vm.lock go test -tags e2e -p 1 ./vm/libvirt/

// e2eProvider connects to the system daemon with a fresh cache folder;
// the connection is closed when the test ends.
func e2eProvider(t *testing.T, mod func(*Options)) *Provider {
	t.Helper()
	p := e2eConnect(t, mod)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// e2eConnect connects without closing at the end: for the conformance
// suite, which closes the provider itself.
func e2eConnect(t *testing.T, mod func(*Options)) *Provider {
	t.Helper()
	opts := Options{URI: "qemu:///system", CacheDir: t.TempDir()}
	if mod != nil {
		mod(&opts)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("connect to libvirt: %v", err)
	}
	return p
}

// scratchImage makes a small qcow2 image with qemu-img (a test tool here;
// the provider itself never runs it) holding size bytes of data.
func scratchImage(t *testing.T, vsizeMiB, dataMiB int) string {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Skip("qemu-img is not installed (apt-get install qemu-utils)")
	}
	dir := t.TempDir()
	raw := filepath.Join(dir, "data.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < dataMiB; i++ {
		for j := range chunk {
			chunk[j] = byte(i + j*7)
		}
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(int64(vsizeMiB) << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	img := filepath.Join(dir, "box.img")
	if out, err := exec.Command("qemu-img", "convert", "-O", "qcow2", raw, img).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	return img
}

// uniqueKey is a disk key no other run shares, so each run uploads.
func uniqueKey(t *testing.T) string {
	return fmt.Sprintf("e2e/%s/%d", t.Name(), time.Now().UnixNano())
}

// poolVolumes lists the names of the pool's volumes.
func poolVolumes(t *testing.T, p *Provider) []string {
	t.Helper()
	pl, err := p.ensurePool(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vols, err := p.volumes(pl)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vols {
		names = append(names, v.Name)
	}
	return names
}

func hasVolume(names []string, want string) bool {
	for _, n := range names {
		if n == want {
			return true
		}
	}
	return false
}

// cleanupMachine destroys a machine at the end of a test, failed or not.
func cleanupMachine(t *testing.T, p *Provider, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Destroy(ctx, &vm.Machine{Name: name}); err != nil {
			t.Errorf("cleanup: destroy %q: %v", name, err)
		}
	})
}

// cleanupBase removes an uploaded base at the end of a test.
func cleanupBase(t *testing.T, p *Provider, key string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.RemoveBaseImage(ctx, key); err != nil {
			t.Errorf("cleanup: remove base %q: %v", key, err)
		}
	})
}

// The storage life of a box image: one upload shared by two machines'
// overlays, a removal refused while they exist, an interrupted upload
// never taken for a complete one, and nothing left behind.
func TestE2EStorage(t *testing.T) {
	uploads := 0
	p := e2eProvider(t, func(o *Options) {
		o.UploadProgress = func(_ string, done, _ int64) {
			if done == 0 {
				uploads++
			}
		}
	})
	img := scratchImage(t, 64, 24)
	key := uniqueKey(t)
	cleanupBase(t, p, key)
	disk := vm.Disk{Path: img, Format: "qcow2", Key: key}
	spec := func(name string) vm.Spec {
		return vm.Spec{Name: name, Dir: t.TempDir(), Disks: []vm.Disk{disk}, CPUs: 1, MemoryMiB: 256, Accel: "tcg",
			DiskGiB: 1, Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cleanupMachine(t, p, "e2e-st1")
	cleanupMachine(t, p, "e2e-st2")

	start := time.Now()
	c1, err := p.Create(ctx, spec("e2e-st1"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("first create (upload of a %d-byte image): %s", fileSize(t, img), time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, err := p.Create(ctx, spec("e2e-st2")); err != nil {
		t.Fatalf("second Create: %v", err)
	}
	t.Logf("second create (no upload): %s", time.Since(start).Round(time.Millisecond))
	if uploads != 1 {
		t.Fatalf("%d uploads for two machines of one box, want 1", uploads)
	}
	if c1.Accel != "tcg" || c1.ID != "devbundle-e2e-st1" {
		t.Fatalf("created %+v", c1)
	}

	// libvirt kept every part of the definition, the qemu namespace too.
	d, err := p.domainXML(c1.ID, golibvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	n := netOf(d)
	if n.Mode != netHostfwd || len(n.Forwards) != 1 || n.Forwards[0].HostPort != c1.Forwards[0].HostPort || n.Forwards[0].GuestPort != 22 {
		t.Fatalf("forwards read back from libvirt: %+v, created %+v", n, c1.Forwards)
	}
	if consoleLogOf(d) != c1.ConsoleLog || d.Type != "qemu" || len(d.Devices.RNGs) != 1 {
		t.Fatalf("domain read back: console %q type %q rngs %d", consoleLogOf(d), d.Type, len(d.Devices.RNGs))
	}

	// The overlay is backed by the base, sized to DiskGiB.
	base := baseVolumeName(key)
	pl, err := p.ensurePool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vol, err := p.l.StorageVolLookupByName(pl.ref, overlayName("e2e-st1", 0))
	if err != nil {
		t.Fatal(err)
	}
	vx, err := p.volXML(vol)
	if err != nil {
		t.Fatal(err)
	}
	if vx.BackingStore == nil || filepath.Base(vx.BackingStore.Path) != base || vx.Capacity.Value != 1<<30 {
		t.Fatalf("overlay %q: backing %+v capacity %+v", vol.Name, vx.BackingStore, vx.Capacity)
	}
	_, _, phys, err := p.volInfo(vol)
	if err != nil || phys > 4<<20 {
		t.Fatalf("overlay holds %d bytes (%v): the base was copied, not backed", phys, err)
	}

	// The base stays while machines use it.
	if err := p.RemoveBaseImage(ctx, key); err == nil || !strings.Contains(err.Error(), overlayName("e2e-st1", 0)) {
		t.Fatalf("RemoveBaseImage while in use: %v", err)
	}
	for _, m := range []string{"e2e-st1", "e2e-st2"} {
		if err := p.Destroy(ctx, &vm.Machine{Name: m}); err != nil {
			t.Fatalf("Destroy(%q): %v", m, err)
		}
	}
	names := poolVolumes(t, p)
	for _, n := range names {
		if ownedBy(n, "e2e-st1") || ownedBy(n, "e2e-st2") {
			t.Errorf("volume %q left after destroy", n)
		}
	}
	if !hasVolume(names, base) || !hasVolume(names, base+completeSuffix) {
		t.Fatalf("base %q gone with the machines: %q", base, names)
	}

	// An interrupted upload leaves no complete-looking base: the next
	// create uploads again.
	if err := p.RemoveBaseImage(ctx, key); err != nil {
		t.Fatalf("RemoveBaseImage: %v", err)
	}
	if names := poolVolumes(t, p); hasVolume(names, base) || hasVolume(names, base+completeSuffix) {
		t.Fatalf("base still there after RemoveBaseImage: %q", names)
	}
	cctx, ccancel := context.WithCancel(ctx)
	p.opts.UploadProgress = func(_ string, done, _ int64) {
		if done > 0 {
			ccancel()
		}
	}
	_, err = p.Create(cctx, spec("e2e-st1"))
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with the upload cancelled: %v", err)
	}
	if names := poolVolumes(t, p); hasVolume(names, base+completeSuffix) {
		t.Fatalf("an interrupted upload was marked complete: %q", names)
	}
	// A half-written base (as a killed process leaves it) is redone.
	halfDoc, err := (&libvirtxml.StorageVolume{Name: base, Capacity: &libvirtxml.StorageVolumeSize{Value: 1 << 20}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.l.StorageVolCreateXML(pl.ref, halfDoc, 0); err != nil {
		t.Fatal(err)
	}
	uploads = 0
	p.opts.UploadProgress = func(_ string, done, _ int64) {
		if done == 0 {
			uploads++
		}
	}
	if _, err := p.Create(ctx, spec("e2e-st1")); err != nil {
		t.Fatalf("Create after an interrupted upload: %v", err)
	}
	if uploads != 1 {
		t.Fatalf("the half-written base was taken as complete (%d uploads)", uploads)
	}
	_, _, phys, err = p.volInfo(golibvirt.StorageVol{Pool: pl.ref.Name, Name: base, Key: filepath.Join(pl.path, base)})
	if err != nil || phys != uint64(fileSize(t, img)) {
		t.Fatalf("re-uploaded base holds %d bytes (%v), the image %d", phys, err, fileSize(t, img))
	}
}

func fileSize(t *testing.T, p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// QEMU accepts the definition and starts: the user-mode network arguments,
// the console file in the pool, the disk chain. The disk holds no OS, so
// the guest sits in the BIOS: an ACPI request goes unanswered and Halt
// must power it off when the deadline passes.
func TestE2EStartWithoutOS(t *testing.T) {
	p := e2eProvider(t, nil)
	key := uniqueKey(t)
	cleanupBase(t, p, key)
	cleanupMachine(t, p, "e2e-noos")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := p.Create(ctx, vm.Spec{Name: "e2e-noos", Dir: t.TempDir(), CPUs: 1, MemoryMiB: 256, Accel: "tcg",
		Disks:    []vm.Disk{{Path: scratchImage(t, 16, 1), Format: "qcow2", Key: key}},
		Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}, {Name: "docker", GuestPort: 2376}}})
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	m := &vm.Machine{Name: "e2e-noos", ID: c.ID, Forwards: c.Forwards, ConsoleLog: c.ConsoleLog}
	if err := p.Start(ctx, m); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if st, err := p.State(ctx, m); err != nil || st != vm.StateRunning {
		t.Fatalf("State = %q, %v", st, err)
	}
	// Both forwards listen on 127.0.0.1 (QEMU accepts, then drops the
	// connection: nothing listens in the guest).
	for _, f := range c.Forwards {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.HostPort), 5*time.Second)
		if err != nil {
			t.Fatalf("forward %q on 127.0.0.1:%d: %v", f.Name, f.HostPort, err)
		}
		conn.Close()
		if addrs := listeners(t, f.HostPort); len(addrs) != 1 || addrs[0] != "0100007F" {
			t.Fatalf("forward %q: port %d listens on %q (kernel notation), want only 127.0.0.1 (0100007F)", f.Name, f.HostPort, addrs)
		}
	}
	st, err := os.Stat(c.ConsoleLog)
	if err != nil {
		t.Fatalf("console log %q: %v", c.ConsoleLog, err)
	}
	t.Logf("console log %s: mode %s, owner %s", c.ConsoleLog, st.Mode(), fileOwner(st))
	if _, err := p.ReadConsole(ctx, m, 4096); err != nil {
		t.Fatalf("ReadConsole: %v", err)
	}
	hctx, hcancel := context.WithTimeout(ctx, 3*time.Second)
	defer hcancel()
	start := time.Now()
	if err := p.Halt(hctx, m, false); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if d := time.Since(start); d < 2*time.Second {
		t.Fatalf("Halt returned after %s without the guest answering ACPI: it did not wait", d)
	}
	if st, _ := p.State(ctx, m); st != vm.StateHalted {
		t.Fatalf("State after Halt = %q", st)
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if st, _ := p.State(ctx, m); st != vm.StateNotCreated {
		t.Fatalf("State after Destroy = %q", st)
	}
	if _, err := os.Stat(c.ConsoleLog); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("console log %q left after destroy: %v", c.ConsoleLog, err)
	}
}

// listeners lists the local addresses (in /proc/net/tcp{,6} notation)
// listening on port.
func listeners(t *testing.T, port int) []string {
	var out []string
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // LISTEN
				continue
			}
			addr, hexPort, _ := strings.Cut(f[1], ":")
			if hexPort == fmt.Sprintf("%04X", port) {
				out = append(out, addr)
			}
		}
	}
	return out
}

// Network mode never starts a network: with Debian's "default" network
// defined but inactive (as it must stay on this host), Create refuses and
// the network stays down.
func TestE2ENetworkModeRefusesInactiveNetwork(t *testing.T) {
	p := e2eProvider(t, func(o *Options) { o.Network = NetworkLibvirt; o.NetworkName = "default" })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cleanupMachine(t, p, "e2e-netmode")
	spec := vm.Spec{Name: "e2e-netmode", Dir: t.TempDir(), CPUs: 1, MemoryMiB: 256, Accel: "tcg",
		Disks: []vm.Disk{{Path: "/nonexistent/box.img", Format: "qcow2", Key: uniqueKey(t)}}}
	net, err := p.l.NetworkLookupByName("default")
	if err != nil {
		t.Skipf("no libvirt network \"default\" defined here: %v", err)
	}
	if active, _ := p.l.NetworkIsActive(net); active == 1 {
		t.Skip("the \"default\" network is active on this host; this test needs it inactive")
	}
	_, err = p.Create(ctx, spec)
	if err == nil || !strings.Contains(err.Error(), `"default" is not active`) || !strings.Contains(err.Error(), "virsh net-start default") {
		t.Fatalf("Create on an inactive network: %v", err)
	}
	if active, _ := p.l.NetworkIsActive(net); active != 0 {
		t.Fatal("the network was started")
	}
	p.opts.NetworkName = "devbundle-no-such-network"
	if _, err := p.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), "devbundle-no-such-network") {
		t.Fatalf("Create on a missing network: %v", err)
	}
}

// fileOwner names a file's owning user id.
func fileOwner(st os.FileInfo) string {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return fmt.Sprintf("uid %d gid %d", sys.Uid, sys.Gid)
	}
	return "unknown"
}
