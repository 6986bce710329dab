package testbox

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

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"
)

// Namespace is a network namespace of the test's own, running a libvirtd
// of its own: the only place where a libvirt network may be started on
// these machines (a NAT network on the host would take a private range
// the workplace forbids).
type Namespace struct {
	// Name is the namespace's name ("ip netns exec <Name> ...").
	Name string
	// Base is a world-traversable folder for the daemon's pid and log
	// files and for storage pools (QEMU runs as libvirt-qemu).
	Base string
	// DaemonPID is the namespace's libvirtd.
	DaemonPID int
}

// Socket is the namespace daemon's socket as seen from the host.
func (ns *Namespace) Socket() string {
	return filepath.Join("/proc", strconv.Itoa(ns.DaemonPID), "root/run/libvirt/libvirt-sock")
}

// URI is a libvirt URI for the namespace's daemon, usable by devbundle.
func (ns *Namespace) URI() string { return "qemu+unix:///system?socket=" + ns.Socket() }

// Exec returns a command that runs inside the namespace.
func (ns *Namespace) Exec(name string, args ...string) *exec.Cmd {
	return exec.CommandContext(context.Background(), "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// NewNamespace makes a network namespace with its loopback up and starts
// virtlogd and libvirtd inside it, each folder libvirt keeps state in
// replaced by an empty tmpfs in a private mount namespace ("ip netns exec"
// makes one). Everything is stopped and removed when the test ends. It
// skips (fails in CI) when the test cannot run as root with the tools.
func NewNamespace(t testing.TB) *Namespace {
	t.Helper()
	if os.Geteuid() != 0 {
		unavailable(t, InCI(), "a network namespace and a second libvirtd need root")
		return nil
	}
	for _, tool := range []string{"ip", "libvirtd", "virtlogd", "dnsmasq", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			unavailable(t, InCI(), tool+" is not installed (.ci/setup-vm-host.sh installs it)")
			return nil
		}
	}
	name := fmt.Sprintf("dbnet%d", os.Getpid())
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.CommandContext(context.Background(), "ip", "netns", "del", name).Run() })
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")

	base, err := os.MkdirTemp("/var/tmp", "devbundle-netns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	ns := &Namespace{Name: name, Base: base}
	ns.DaemonPID = startLibvirtd(t, name, base)
	return ns
}

// Connect connects to the namespace's daemon, closed when the test ends.
// It fails the test when that daemon knows any network but the test's
// own, so a test never defines a network on the host's daemon by mistake.
func (ns *Namespace) Connect(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(ns.Socket()), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		t.Fatalf("connect to the namespace's libvirtd: %v", err)
	}
	t.Cleanup(func() { _ = l.Disconnect() })
	return l
}

// StartNetwork defines and starts an isolated network (no forward, DHCP
// on 192.168.150.10-99 behind bridge dbtbr0) on the namespace's daemon,
// removed when the test ends.
func (ns *Namespace) StartNetwork(t testing.TB, l *libvirt.Libvirt, name string) {
	t.Helper()
	nets, _, err := l.ConnectListAllNetworks(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if n.Name != name {
			t.Fatalf("the daemon knows network %q: it is not the namespace's fresh daemon; stopping before touching any network", n.Name)
		}
	}
	doc, err := (&libvirtxml.Network{
		Name:   name,
		Bridge: &libvirtxml.NetworkBridge{Name: "dbtbr0"},
		IPs: []libvirtxml.NetworkIP{{
			Address: "192.168.150.1", Netmask: "255.255.255.0",
			DHCP: &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{Start: "192.168.150.10", End: "192.168.150.99"}}},
		}},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ref, err := l.NetworkDefineXML(doc)
	if err != nil {
		t.Fatalf("define the namespace's network: %v", err)
	}
	if err := l.NetworkCreate(ref); err != nil {
		t.Fatalf("start the namespace's network: %v", err)
	}
	t.Cleanup(func() {
		_ = l.NetworkDestroy(ref)
		_ = l.NetworkUndefine(ref)
	})
}

func mustRun(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.CommandContext(context.Background(), name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// startLibvirtd runs the daemons in namespace ns and returns libvirtd's
// pid once its socket answers.
func startLibvirtd(t testing.TB, ns, base string) int {
	t.Helper()
	logPid := filepath.Join(base, "virtlogd.pid")
	pidFile := filepath.Join(base, "libvirtd.pid")
	logPath := filepath.Join(base, "libvirtd.log")
	script := strings.Join([]string{
		"set -e",
		"for d in /run/libvirt /var/lib/libvirt /var/cache/libvirt /var/log/libvirt /etc/libvirt/qemu /etc/libvirt/storage /etc/libvirt/secrets; do mount -t tmpfs -o mode=0755 tmpfs $d; done",
		"mkdir -p /var/lib/libvirt/qemu /var/lib/libvirt/dnsmasq /var/log/libvirt/qemu /etc/libvirt/qemu/networks/autostart /etc/libvirt/storage/autostart",
		"chown libvirt-qemu:libvirt-qemu /var/lib/libvirt/qemu && chmod 0750 /var/lib/libvirt/qemu",
		"virtlogd -d --pid-file " + logPid,
		"exec libvirtd --pid-file " + pidFile,
	}, "\n")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.CommandContext(context.Background(), "ip", "netns", "exec", ns, "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{})
	go func() { waitErr = cmd.Wait(); close(exited) }()
	// "ip netns exec" forks, so signalling it would not reach the
	// daemons: stop them by the pids they wrote.
	signalPidFile := func(path string, sig syscall.Signal) {
		if data, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 1 {
				_ = syscall.Kill(pid, sig)
			}
		}
	}
	t.Cleanup(func() {
		signalPidFile(pidFile, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			signalPidFile(pidFile, syscall.SIGKILL)
			<-exited
		}
		signalPidFile(logPid, syscall.SIGTERM)
	})
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
		case <-exited:
			t.Fatalf("the namespace's libvirtd exited: %v\n%s", waitErr, tailFile(logPath))
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the namespace's libvirtd never opened its socket\n%s", tailFile(logPath))
		}
	}
}

// checkInNamespace makes sure pid runs in network namespace ns, not in
// the host's, and in a mount namespace of its own.
func checkInNamespace(t testing.TB, pid int, ns string) {
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

// tailFile returns the last 20 lines of a log file.
func tailFile(path string) string {
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

// Link joins the namespace to the host with a veth pair on a /30 of its
// own (10.250.N.0/30) and returns the host's and the namespace's
// addresses on it. The pair is removed when the test ends.
func (ns *Namespace) Link(t testing.TB) (hostIP, nsIP string) {
	t.Helper()
	n := os.Getpid() % 250
	hostIf, nsIf := fmt.Sprintf("dbvh%d", os.Getpid()%100000), fmt.Sprintf("dbvn%d", os.Getpid()%100000)
	hostIP, nsIP = fmt.Sprintf("10.250.%d.1", n), fmt.Sprintf("10.250.%d.2", n)
	mustRun(t, "ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", ns.Name)
	t.Cleanup(func() { _ = exec.CommandContext(context.Background(), "ip", "link", "del", hostIf).Run() })
	mustRun(t, "ip", "addr", "add", hostIP+"/30", "dev", hostIf)
	mustRun(t, "ip", "link", "set", hostIf, "up")
	mustRun(t, "ip", "-n", ns.Name, "addr", "add", nsIP+"/30", "dev", nsIf)
	mustRun(t, "ip", "-n", ns.Name, "link", "set", nsIf, "up")
	return hostIP, nsIP
}
