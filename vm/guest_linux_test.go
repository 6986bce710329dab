//go:build linux

package vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// nsRunner runs guest commands with a real sh inside a network namespace
// of the test's own, standing in for a guest's shell.
type nsRunner struct{ ns string }

func (r nsRunner) Output(ctx context.Context, cmd string) ([]byte, error) {
	return exec.CommandContext(ctx, "ip", "netns", "exec", r.ns, "sh", "-c", cmd).Output()
}

// NICAddress's script against real interfaces: loopback, a dummy
// interface with an address, one without (the DHCP attempt finds no
// server), and a MAC nothing has.
func TestNICAddressWithRealInterfaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip (iproute2) is not installed")
	}
	ns := fmt.Sprintf("dbnic%d", os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	run("-n", ns, "link", "set", "lo", "up")
	run("-n", ns, "link", "add", "hostonly0", "address", "02:00:00:aa:bb:cc", "type", "veth", "peer", "name", "hostonly0p")
	run("-n", ns, "addr", "add", "192.168.56.10/24", "dev", "hostonly0")
	run("-n", ns, "link", "set", "hostonly0", "up")
	run("-n", ns, "link", "add", "bare0", "address", "02:00:00:aa:bb:cd", "type", "veth", "peer", "name", "bare0p")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := nsRunner{ns: ns}
	for _, tc := range []struct {
		mac, iface, addr string
	}{
		{"02:00:00:AA:BB:CC", "hostonly0", "192.168.56.10"},
		{"00:00:00:00:00:00", "lo", "127.0.0.1"},
		{"02:00:00:aa:bb:cd", "bare0", ""},
		{"02:00:00:00:00:01", "", ""},
	} {
		iface, addr, err := NICAddress(ctx, r, tc.mac, 2)
		if err != nil || iface != tc.iface || addr != tc.addr {
			t.Errorf("NICAddress(%s) = %q, %q, %v; want %q, %q", tc.mac, iface, addr, err, tc.iface, tc.addr)
		}
	}
	if _, _, err := NICAddress(ctx, r, "not-a-mac; reboot", 2); err == nil {
		t.Error("a MAC that is not one was accepted")
	}
}
