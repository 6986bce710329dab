//go:build e2e

package libvirt

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/devbundle/devbundle/internal/archive"
	"github.com/devbundle/devbundle/tests/testbox"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/providertest"
)

// The test box (tests/box) booted by the real daemon:
//
//	DEVBUNDLE_TESTBOX_DIR=$(bash tests/box/cached.sh) \
//	  flock /tmp/devbundle-vm.lock go test -tags e2e -p 1 ./vm/libvirt/

// boxDisk unpacks the test box's devbox.box (with the archive code the
// box store uses) and describes its box.img as the first disk of a box.
func boxDisk(t *testing.T) vm.Disk {
	t.Helper()
	dir := testbox.Dir(t)
	f, err := os.Open(filepath.Join(dir, testbox.BoxFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := archive.ExtractTar(ctx, f, out); err != nil {
		t.Fatalf("unpack %s: %v", testbox.BoxFile, err)
	}
	var md struct {
		Provider string `json:"provider"`
		Format   string `json:"format"`
	}
	data, err := os.ReadFile(filepath.Join(out, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &md); err != nil {
		t.Fatalf("metadata.json: %v", err)
	}
	if md.Provider != "libvirt" {
		t.Fatalf("test box is for provider %q", md.Provider)
	}
	if md.Format == "" {
		md.Format = "qcow2"
	}
	return vm.Disk{Path: filepath.Join(out, "box.img"), Format: md.Format, Key: uniqueKey(t)}
}

func boxSpec(t *testing.T, name string, disk vm.Disk, accel string) vm.Spec {
	return vm.Spec{
		Name: name, Dir: t.TempDir(), CPUs: 2, MemoryMiB: 1024, Accel: accel,
		Disks:    []vm.Disk{disk},
		Forwards: []vm.Forward{{Name: "ssh", GuestPort: 22}, {Name: "docker", GuestPort: 2376}},
	}
}

// The conformance suite on libvirt, TCG asked for.
func TestE2EConformance(t *testing.T) {
	disk := boxDisk(t)
	var uploadStart, uploadEnd time.Time
	var uploaded int64
	cleanupBase(t, e2eProvider(t, nil), disk.Key)
	var p *Provider
	newProvider := func(t *testing.T) vm.Provider {
		p = e2eConnect(t, func(o *Options) {
			o.UploadProgress = func(_ string, done, total int64) {
				if done == 0 {
					uploadStart = time.Now()
				}
				if done == total {
					uploadEnd, uploaded = time.Now(), total
				}
			}
		})
		return p
	}
	providertest.Run(t,
		newProvider,
		func(t *testing.T) vm.Spec { return boxSpec(t, "e2e-conf", disk, "tcg") },
		providertest.Options{
			SSH: true,
			AfterBoot: func(t *testing.T, pv vm.Provider, m *vm.Machine) {
				if m.Accel != "tcg" {
					t.Errorf("accel %q, asked for tcg", m.Accel)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				out, err := pv.(*Provider).ReadConsole(ctx, m, 2048)
				if err != nil {
					t.Fatalf("ReadConsole: %v", err)
				}
				if len(out) == 0 {
					t.Fatal("the serial console log is empty after a boot to sshd")
				}
				lines := strings.Split(strings.TrimSpace(string(out)), "\n")
				t.Logf("console log %s, last line: %q", m.ConsoleLog, strings.TrimSpace(lines[len(lines)-1]))
				checkLiveForwards(ctx, t, pv.(*Provider), m)
			},
		})
	if !uploadEnd.IsZero() {
		d := uploadEnd.Sub(uploadStart)
		t.Logf("upload of %d bytes: %s (%.0f MB/s)", uploaded, d.Round(time.Millisecond), float64(uploaded)/d.Seconds()/1e6)
	}
	// Nothing of the machines is left (the base goes in cleanup).
	for _, n := range poolVolumes(t, e2eProvider(t, nil)) {
		if ownedBy(n, "e2e-conf") || ownedBy(n, "e2e-conf-b") {
			t.Errorf("volume %q left behind", n)
		}
	}
}

// Without --accel (auto) on this machine, whose KVM is paravirtual, the
// provider falls back to TCG with a warning, remembers it, and the next
// create takes the remembered verdict.
func TestE2EAccelAutoFallsBackToTCG(t *testing.T) {
	disk := boxDisk(t)
	cache := t.TempDir()
	p := e2eProvider(t, func(o *Options) { o.CacheDir = cache })
	cleanupBase(t, p, disk.Key)
	cleanupMachine(t, p, "e2e-auto1")
	cleanupMachine(t, p, "e2e-auto2")
	caps, err := p.capabilities()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.kvm {
		t.Skipf("libvirt offers no KVM here (%s): the fallback under test is for an offered KVM", caps.kvmWhyNot)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := p.Create(ctx, boxSpec(t, "e2e-auto1", disk, ""))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if c.Accel != "tcg" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "TCG") || strings.Contains(c.Warnings[0], "\n") {
		t.Fatalf("Created accel %q warnings %q, want tcg and one warning line", c.Accel, c.Warnings)
	}
	t.Logf("warning: %s", c.Warnings[0])
	d, err := p.domainXML(c.ID, golibvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	if d.Type != "qemu" {
		t.Fatalf("domain type %q, want qemu (TCG)", d.Type)
	}
	key := accelKey(p.host, p.t.uri)
	v, err := accelCache{path: filepath.Join(cache, accelFile)}.get(key)
	if err != nil || v == nil || v.Accel != "tcg" {
		t.Fatalf("verdict for %q: %+v %v", key, v, err)
	}
	// The next create reads the verdict (its reason, edited here, shows).
	v.Reason = "remembered verdict"
	if err := (accelCache{path: filepath.Join(cache, accelFile)}).put(ctx, key, *v); err != nil {
		t.Fatal(err)
	}
	c2, err := p.Create(ctx, boxSpec(t, "e2e-auto2", disk, "auto"))
	if err != nil {
		t.Fatalf("second Create: %v", err)
	}
	if c2.Accel != "tcg" || len(c2.Warnings) != 1 || !strings.Contains(c2.Warnings[0], "remembered verdict") {
		t.Fatalf("second create: accel %q warnings %q, want the remembered verdict", c2.Accel, c2.Warnings)
	}
	// --accel kvm still overrides.
	cleanupMachine(t, p, "e2e-auto3")
	c3, err := p.Create(ctx, boxSpec(t, "e2e-auto3", disk, "kvm"))
	if err != nil {
		t.Fatalf("Create with kvm: %v", err)
	}
	if c3.Accel != "kvm" || len(c3.Warnings) != 0 {
		t.Fatalf("Create with kvm: %+v", c3)
	}
}

// The boot probe itself (the CPU-flag shortcut switched off): a stock
// kernel started with this machine's paravirtual KVM gives no SSH banner,
// so the verdict is TCG, and the probe leaves nothing behind.
func TestE2EKVMBootProbe(t *testing.T) {
	disk := boxDisk(t)
	p := e2eProvider(t, func(o *Options) {
		o.AlwaysProbeKVM = true
		o.KVMProbeTimeout = 60 * time.Second
	})
	cleanupBase(t, p, disk.Key)
	cleanupMachine(t, p, "e2e-probe")
	caps, err := p.capabilities()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.kvm {
		t.Skipf("libvirt offers no KVM here (%s)", caps.kvmWhyNot)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	c, err := p.Create(ctx, boxSpec(t, "e2e-probe", disk, "auto"))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	t.Logf("create with the boot probe: %s, accel %s, warnings %q", time.Since(start).Round(time.Second), c.Accel, c.Warnings)
	if c.Accel != "tcg" || len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "no SSH banner within 1m0s") {
		t.Fatalf("accel %q warnings %q, want the TCG verdict of the boot probe", c.Accel, c.Warnings)
	}
	doms, _, err := p.l.ConnectListAllDomains(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range doms {
		if strings.Contains(d.Name, "kvmprobe") {
			t.Errorf("probe domain %q left behind", d.Name)
		}
	}
	for _, n := range poolVolumes(t, p) {
		if strings.Contains(n, "kvmprobe") {
			t.Errorf("probe volume %q left behind", n)
		}
	}
}

// checkLiveForwards adds a forward to a running machine through QEMU's
// monitor, sees QEMU listen on its host port, removes it again and sees
// the port refuse. (Guest port 9 has no listener: what is proved is the
// host side, which is what hostfwd_add and hostfwd_remove change.)
func checkLiveForwards(ctx context.Context, t *testing.T, p *Provider, m *vm.Machine) {
	t.Helper()
	orig := append([]vm.Forward(nil), m.Forwards...)
	got, err := p.SetForwardsLive(ctx, m, append(append([]vm.Forward(nil), orig...), vm.Forward{Name: "extra", GuestPort: 9, HostIP: "127.0.0.1"}))
	if err != nil {
		t.Fatalf("SetForwardsLive: %v", err)
	}
	var extra vm.Forward
	for _, f := range got {
		if f.Name == "extra" {
			extra = f
		}
	}
	if extra.HostPort == 0 || len(got) != len(orig)+1 {
		t.Fatalf("SetForwardsLive gave %+v", got)
	}
	addr := net.JoinHostPort(extra.HostIP, strconv.Itoa(extra.HostPort))
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the live forward %s does not listen: %v", addr, err)
	}
	conn.Close()
	// The machine's SSH forward still works beside it.
	if ssh, ok := m.Forward("ssh"); ok {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ssh.HostIP, strconv.Itoa(ssh.HostPort)), 5*time.Second)
		if err != nil {
			t.Fatalf("the SSH forward after a live change: %v", err)
		}
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		banner := make([]byte, 8)
		_, err = io.ReadFull(c, banner)
		c.Close()
		if err != nil || string(banner) != "SSH-2.0-" {
			t.Fatalf("the SSH forward after a live change gave %q, %v", banner, err)
		}
	}
	if _, err := p.SetForwardsLive(ctx, m, orig); err != nil {
		t.Fatalf("SetForwardsLive back: %v", err)
	}
	if conn, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("the removed forward %s still accepts connections", addr)
	}
	d, err := p.domainXML(machineDomain(m), golibvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	if n := netOf(d); len(n.Forwards) != len(orig) {
		t.Errorf("definition after the live round trip has forwards %+v, want %+v", n.Forwards, orig)
	}
}
