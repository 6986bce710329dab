//go:build e2e && linux

package libvirt

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"libvirt.org/go/libvirtxml"

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
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace and a second libvirtd")
	}
	for _, tool := range []string{"ip", "libvirtd", "virtlogd", "dnsmasq", "iptables", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed", tool)
		}
	}
	disk := boxDisk(t)
	ns := fmt.Sprintf("dbnet%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })

	// The pool folder must be reachable by libvirt-qemu.
	base, err := os.MkdirTemp("/var/tmp", "devbundle-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	daemon := startNamespacedLibvirtd(t, ns, base)

	uri := "qemu+unix:///system?socket=" + filepath.Join("/proc", strconv.Itoa(daemon), "root/run/libvirt/libvirt-sock")
	p := e2eProvider(t, func(o *Options) {
		o.URI = uri
		o.PoolDir = filepath.Join(base, "pool")
		o.Network = NetworkLibvirt
		o.NetworkName = "dbtest"
	})
	// Never define a network on the host's daemon: the one reached must
	// be the fresh one, which knows no network at all (the host's knows
	// Debian's "default").
	nets, _, err := p.l.ConnectListAllNetworks(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 0 {
		t.Fatalf("the daemon at %q knows networks %v: it is not the namespace's fresh daemon; stopping before touching any network", uri, nets)
	}
	cleanupBase(t, p, disk.Key)

	// The namespace's network: isolated, DHCP on a private range.
	netDoc, err := (&libvirtxml.Network{
		Name:   "dbtest",
		Bridge: &libvirtxml.NetworkBridge{Name: "dbtbr0"},
		IPs: []libvirtxml.NetworkIP{{
			Address: "192.168.150.1", Netmask: "255.255.255.0",
			DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: "192.168.150.10", End: "192.168.150.99"}}},
		}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	netRef, err := p.l.NetworkDefineXML(netDoc)
	if err != nil {
		t.Fatalf("define the namespace's network: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	spec := boxSpec(t, "e2e-netns", disk, "tcg")
	if _, err := p.Create(ctx, spec); err == nil || !strings.Contains(err.Error(), `"dbtest" is not active`) {
		t.Fatalf("Create on the inactive network: %v", err)
	}
	if err := p.l.NetworkCreate(netRef); err != nil {
		t.Fatalf("start the namespace's network: %v", err)
	}
	t.Cleanup(func() {
		_ = p.l.NetworkDestroy(netRef)
		_ = p.l.NetworkUndefine(netRef)
	})
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
		out, _ := exec.CommandContext(bootCtx, "ip", "netns", "exec", ns, "bash", "-c",
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

// startNamespacedLibvirtd runs virtlogd and libvirtd inside network
// namespace ns, with every folder libvirt keeps state in replaced by an
// empty tmpfs in a private mount namespace ("ip netns exec" makes one),
// and returns libvirtd's pid once its socket answers. Both daemons are
// stopped when the test ends.
func startNamespacedLibvirtd(t *testing.T, ns, base string) int {
	t.Helper()
	logPid := filepath.Join(base, "virtlogd.pid")
	script := strings.Join([]string{
		"set -e",
		"for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets; do mount -t tmpfs -o mode=0755 tmpfs $d; done",
		"mkdir -p /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu /etc/libvirt/qemu/networks/autostart /etc/libvirt/storage/autostart",
		"chown libvirt-qemu:libvirt-qemu /var/lib/libvirt/qemu && chmod 0750 /var/lib/libvirt/qemu",
		"virtlogd -d --pid-file " + logPid,
		"exec libvirtd --pid-file " + filepath.Join(base, "libvirtd.pid"),
	}, "\n")
	logFile, err := os.Create(filepath.Join(base, "libvirtd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("ip", "netns", "exec", ns, "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	// Stop both daemons by the pids they wrote ("ip netns exec" forks, so
	// signalling it would not reach them).
	signalPidFile := func(path string, sig syscall.Signal) {
		if data, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, sig)
			}
		}
	}
	t.Cleanup(func() {
		signalPidFile(filepath.Join(base, "libvirtd.pid"), syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			signalPidFile(filepath.Join(base, "libvirtd.pid"), syscall.SIGKILL)
			<-exited
		}
		signalPidFile(logPid, syscall.SIGTERM)
	})
	// "ip netns exec" forks: libvirtd's pid is the one in its pid file.
	pidFile := filepath.Join(base, "libvirtd.pid")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				sock := filepath.Join("/proc", strconv.Itoa(pid), "root/run/libvirt/libvirt-sock")
				if _, err := os.Stat(sock); err == nil {
					checkInNamespace(t, pid, ns)
					return pid
				}
			}
		}
		select {
		case err := <-exited:
			t.Fatalf("the namespace's libvirtd exited: %v\n%s", err, tail(filepath.Join(base, "libvirtd.log")))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespace's libvirtd never opened its socket\n%s", tail(filepath.Join(base, "libvirtd.log")))
		}
	}
}

// checkInNamespace makes sure pid runs in network namespace ns, not in
// the host's, and in a mount namespace of its own.
func checkInNamespace(t *testing.T, pid int, ns string) {
	t.Helper()
	ino := func(path string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatalf("stat %s: %v", path, err)
		}
		return st.Ino
	}
	proc := filepath.Join("/proc", strconv.Itoa(pid), "ns")
	if ino(filepath.Join(proc, "net")) != ino(filepath.Join("/run/netns", ns)) || ino(filepath.Join(proc, "net")) == ino("/proc/self/ns/net") {
		t.Fatalf("libvirtd (pid %d) is not in network namespace %q", pid, ns)
	}
	if ino(filepath.Join(proc, "mnt")) == ino("/proc/self/ns/mnt") {
		t.Fatalf("libvirtd (pid %d) shares the host's mount namespace", pid)
	}
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 20 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}
