//go:build e2e && linux

package libvirt

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/tests/testbox"
	"github.com/devbundle/devbundle/vm"
)

// Network mode end to end, without touching the host's networks: a
// network namespace of the test's own runs a second libvirtd (with its
// own /run/libvirt, /var/lib/libvirt, /etc/libvirt/qemu, ... on tmpfs in
// a private mount namespace), and the libvirt network the machine joins
// exists only inside that namespace. The provider reaches that daemon
// through its socket as seen from the daemon's root
// (/proc/<pid>/root/run/libvirt/libvirt-sock).
func TestE2ENetworkModeInNamespace(t *testing.T) {
	disk := boxDisk(t)
	ns := testbox.NewNamespace(t)
	p := e2eProvider(t, func(o *Options) {
		o.URI = ns.URI()
		o.PoolDir = filepath.Join(ns.Base, "pool")
		o.Network = NetworkLibvirt
		o.NetworkName = "dbtest"
	})
	cleanupBase(t, p, disk.Key)
	l := ns.Connect(t)
	ns.StartNetwork(t, l, "dbtest")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	spec := boxSpec(t, "e2e-netns", disk, "tcg")
	// A network that exists but is not active is refused with its name.
	inactive, err := (&libvirtxml.Network{Name: "dbtest-off", IPs: []libvirtxml.NetworkIP{{Address: "192.168.151.1", Netmask: "255.255.255.0"}}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	offRef, err := l.NetworkDefineXML(inactive)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.NetworkUndefine(offRef) })
	off := e2eProvider(t, func(o *Options) {
		o.URI = ns.URI()
		o.PoolDir = filepath.Join(ns.Base, "pool")
		o.Network = NetworkLibvirt
		o.NetworkName = "dbtest-off"
	})
	if _, err := off.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), `"dbtest-off" is not active`) {
		t.Fatalf("Create on the inactive network: %v", err)
	}
	cleanupMachine(t, p, "e2e-netns")

	c, err := p.Create(ctx, spec)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	m := &vm.Machine{Name: spec.Name, ID: c.ID, Network: "network", Forwards: c.Forwards}
	if _, err := p.Address(ctx, m); err == nil {
		t.Fatal("Address of a machine that never started")
	}
	start := time.Now()
	if err := p.Start(ctx, m); err != nil {
		t.Fatalf("Start: %v", err)
	}
	bootCtx, bootCancel := context.WithTimeout(ctx, 5*time.Minute)
	defer bootCancel()
	var ip string
	for ip == "" {
		ip, err = p.Address(bootCtx, m)
		if bootCtx.Err() != nil {
			t.Fatalf("no address within 5 minutes: %v", err)
		}
		time.Sleep(time.Second)
	}
	t.Logf("address %s from the DHCP lease of MAC %s after %s", ip, machineMAC(spec.Name), time.Since(start).Round(time.Second))
	if !strings.HasPrefix(ip, "192.168.150.") {
		t.Fatalf("address %q is not on the namespace's network", ip)
	}
	// sshd answers on the machine's own address, inside the namespace.
	for {
		out, _ := exec.CommandContext(bootCtx, "ip", "netns", "exec", ns.Name, "bash", "-c",
			fmt.Sprintf(`exec 3<>/dev/tcp/%s/22 && timeout 5 head -c 8 <&3`, ip)).Output()
		if strings.HasPrefix(string(out), "SSH-2.0-") {
			break
		}
		if bootCtx.Err() != nil {
			t.Fatalf("no SSH banner from %s inside the namespace within 5 minutes", ip)
		}
		time.Sleep(time.Second)
	}
	t.Logf("SSH banner from %s after %s", ip, time.Since(start).Round(time.Second))
	// The same machine keeps its MAC (and so its lease) across a restart.
	if err := p.Halt(ctx, m, true); err != nil {
		t.Fatalf("Halt: %v", err)
	}
	if err := p.Destroy(ctx, m); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if st, _ := p.State(ctx, m); st != vm.StateNotCreated {
		t.Fatalf("State after Destroy = %q", st)
	}
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
