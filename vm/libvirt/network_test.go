package libvirt

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

func TestUserNetMode(t *testing.T) {
	tests := []struct {
		ver   uint64
		passt bool
		want  string
	}{
		{9_000_000, true, netHostfwd},
		{9_001_009, true, netHostfwd},
		{9_002_000, false, netHostfwd},
		{9_002_000, true, netPasst},
		{10_010_000, true, netPasst},
	}
	for _, tt := range tests {
		if got := userNetMode(tt.ver, tt.passt); got != tt.want {
			t.Errorf("userNetMode(%d, %v) = %q, want %q", tt.ver, tt.passt, got, tt.want)
		}
	}
}

func TestPasstAvailable(t *testing.T) {
	withEnum := `<domainCapabilities><domain>qemu</domain><arch>x86_64</arch><devices>
  <interface supported='yes'><enum name='backendType'><value>default</value><value>passt</value></enum></interface>
</devices></domainCapabilities>`
	withoutPasst := strings.Replace(withEnum, "<value>passt</value>", "", 1)
	noEnum := `<domainCapabilities><domain>qemu</domain><arch>x86_64</arch><devices></devices></domainCapabilities>`
	found := func(string) (string, error) { return "/usr/bin/passt", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	tests := []struct {
		name  string
		caps  string
		local bool
		look  func(string) (string, error)
		want  bool
	}{
		{"listed", withEnum, false, missing, true},
		{"enum without passt", withoutPasst, true, found, false},
		{"no enum, local, on PATH", noEnum, true, found, true},
		{"no enum, local, missing", noEnum, true, missing, false},
		{"no enum, remote", noEnum, false, found, false},
	}
	for _, tt := range tests {
		if got := passtAvailable(tt.caps, tt.local, tt.look); got != tt.want {
			t.Errorf("%s: passtAvailable = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestMachineMAC(t *testing.T) {
	a, b := machineMAC("default"), machineMAC("other")
	if !regexp.MustCompile(`^52:54:00(:[0-9a-f]{2}){3}$`).MatchString(a) {
		t.Fatalf("MAC %q", a)
	}
	if a != machineMAC("default") {
		t.Fatal("MAC is not deterministic")
	}
	if a == b {
		t.Fatal("two machines share a MAC")
	}
}

func TestLeaseAndARP(t *testing.T) {
	mac := "52:54:00:aa:bb:cc"
	leases := []golibvirt.NetworkDhcpLease{
		{Mac: golibvirt.OptString{"52:54:00:00:00:01"}, Ipaddr: "192.0.2.9", Type: 0},
		{Mac: golibvirt.OptString{mac}, Ipaddr: "fd00::5", Type: 1},
		{Mac: golibvirt.OptString{"52:54:00:AA:BB:CC"}, Ipaddr: "192.0.2.10", Type: 0},
	}
	if got := leaseAddress(leases, mac); got != "192.0.2.10" {
		t.Errorf("leaseAddress = %q", got)
	}
	if got := leaseAddress(leases[:2], mac); got != "" {
		t.Errorf("leaseAddress without an IPv4 lease = %q", got)
	}
	table := `IP address       HW type     Flags       HW address            Mask     Device
192.0.2.7        0x1         0x0         52:54:00:aa:bb:cc     *        virbr9
192.0.2.8        0x1         0x2         52:54:00:aa:bb:cc     *        virbr9
192.0.2.1        0x1         0x2         02:00:00:00:00:01     *        eth0
`
	if got := parseARP(table, mac); got != "192.0.2.8" {
		t.Errorf("parseARP = %q (an incomplete entry must be skipped)", got)
	}
	if got := parseARP(table, "52:54:00:00:00:00"); got != "" {
		t.Errorf("parseARP of an unknown MAC = %q", got)
	}
}

func TestBanner(t *testing.T) {
	serve := func(t *testing.T, send string) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				_, _ = c.Write([]byte(send))
				c.Close()
			}
		}()
		return l.Addr().String()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !banner(ctx, serve(t, "SSH-2.0-OpenSSH_9.2\r\n")) {
		t.Error("no banner seen from an SSH server")
	}
	// QEMU's forward with nothing behind it: accepted, then closed.
	if banner(ctx, serve(t, "")) {
		t.Error("banner seen from a connection closed at once")
	}
	if banner(ctx, serve(t, "HTTP/1.1 400\r\n")) {
		t.Error("banner seen from a non-SSH server")
	}
}
