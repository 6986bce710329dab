package libvirt

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// loopback is where every user-mode forward listens.
const loopback = "127.0.0.1"

// passtMinVersion is the first libvirt with <portForward> on user-mode
// interfaces (the passt backend): 9.2.0.
const passtMinVersion = 9_002_000

// userNetMode picks the user-mode wiring: passt where libvirt >= 9.2 and
// passt is available, QEMU hostfwd arguments otherwise.
func userNetMode(libVersion uint64, passt bool) string {
	if libVersion >= passtMinVersion && passt {
		return netPasst
	}
	return netHostfwd
}

// passtAvailable tells whether the daemon can use the passt backend:
// newer daemons list it in the domain capabilities (interface
// backendType); otherwise, for a local daemon, passt must be on PATH.
func passtAvailable(domCaps string, local bool, lookPath func(string) (string, error)) bool {
	var dc libvirtxml.DomainCaps
	if err := dc.Unmarshal(domCaps); err == nil && dc.Devices != nil && dc.Devices.Interface != nil {
		for _, e := range dc.Devices.Interface.Enums {
			if e.Name == "backendType" {
				return slices.Contains(e.Values, "passt")
			}
		}
	}
	if !local {
		return false
	}
	_, err := lookPath("passt")
	return err == nil
}

// portPicker hands out free TCP ports on 127.0.0.1. A port counts as free
// when the kernel gives it to a listener and no other devbundle domain has
// it recorded (those machines may be halted, their ports not listening).
type portPicker struct {
	avoid  map[int]bool
	listen func(network, addr string) (net.Listener, error)
}

// pick returns n distinct free ports. The listeners stay open until all
// are picked, so the kernel never hands out the same port twice.
func (pp portPicker) pick(n int) ([]int, error) {
	listen := pp.listen
	if listen == nil {
		listen = net.Listen
	}
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	var ports []int
	for tries := 0; len(ports) < n; tries++ {
		if tries > 100*n+100 {
			return nil, errors.New("no free TCP port on 127.0.0.1 after many tries; close some programs or machines")
		}
		l, err := listen("tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if pp.avoid[p] || slices.Contains(ports, p) {
			continue
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// fillForwards returns forwards with every HostIP set to 127.0.0.1 and
// every missing HostPort picked free. Ports given are kept.
func fillForwards(forwards []vm.Forward, pp portPicker) ([]vm.Forward, error) {
	out := slices.Clone(forwards)
	if pp.avoid == nil {
		pp.avoid = map[int]bool{}
	}
	need := 0
	seenGuest := map[int]string{}
	for i, f := range out {
		if f.GuestPort < 1 || f.GuestPort > 65535 {
			return nil, fmt.Errorf("forward %q: guest port %d is out of range", f.Name, f.GuestPort)
		}
		if other, dup := seenGuest[f.GuestPort]; dup {
			return nil, fmt.Errorf("forwards %q and %q both name guest port %d", other, f.Name, f.GuestPort)
		}
		seenGuest[f.GuestPort] = f.Name
		if f.HostIP != "" && f.HostIP != loopback {
			return nil, fmt.Errorf("forward %q asks for host address %q; user-mode forwards bind 127.0.0.1 only", f.Name, f.HostIP)
		}
		out[i].HostIP = loopback
		if f.HostPort == 0 {
			need++
			continue
		}
		if f.HostPort < 1 || f.HostPort > 65535 {
			return nil, fmt.Errorf("forward %q: host port %d is out of range", f.Name, f.HostPort)
		}
		pp.avoid[f.HostPort] = true
	}
	ports, err := pp.pick(need)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].HostPort == 0 {
			out[i].HostPort, ports = ports[0], ports[1:]
		}
	}
	return out, nil
}

// portsInUse checks that the host ports of forwards are free to bind now,
// before a domain that needs them starts (QEMU would fail with a message
// about "hostfwd" that says little).
func portsInUse(ctx context.Context, forwards []vm.Forward) error {
	var busy []string
	var lc net.ListenConfig
	for _, f := range forwards {
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(f.HostIP, strconv.Itoa(f.HostPort)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s:%d (guest port %d)", f.HostIP, f.HostPort, f.GuestPort))
			continue
		}
		_ = l.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("host ports %s are taken by another program; stop it, or let devbundle pick new ports (\"devbundle up\" reconciles forwards)", strings.Join(busy, ", "))
	}
	return nil
}

// machineMAC is the machine's deterministic MAC in QEMU's 52:54:00 range,
// from a hash of its name: the same machine keeps its DHCP lease.
func machineMAC(name string) string {
	h := sha256.Sum256([]byte("devbundle:" + name))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", h[0], h[1], h[2])
}

// checkNetworkActive makes sure network mode has an active network: it
// is never started by devbundle.
func (p *Provider) checkNetworkActive(name string) error {
	n, err := p.l.NetworkLookupByName(name)
	if err != nil {
		return fmt.Errorf("libvirt network %q: %w; define it, or use the user network mode", name, err)
	}
	active, err := p.l.NetworkIsActive(n)
	if err != nil {
		return fmt.Errorf("libvirt network %q: %w", name, err)
	}
	if active != 1 {
		return fmt.Errorf("libvirt network %q is not active and devbundle does not start networks; start it with \"virsh net-start %s\" if that is right for this host, or use the user network mode", name, name)
	}
	return nil
}

// Address is the machine's own address in network mode: from the
// network's DHCP leases for the machine's MAC, then from the host's ARP
// table (local daemons, Linux). In user mode a machine has no address of
// its own; its forwards on 127.0.0.1 are the way in.
func (p *Provider) Address(ctx context.Context, m *vm.Machine) (string, error) {
	defer p.watch(ctx)()
	d, err := p.domainXML(machineDomain(m), 0)
	if err != nil {
		return "", err
	}
	n := netOf(d)
	if n.Mode != netLibvirt {
		return "", fmt.Errorf("machine %q uses user-mode networking and has no address of its own; use its forwards on 127.0.0.1", m.Name)
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	network, err := p.l.NetworkLookupByName(n.Network)
	if err != nil {
		return "", fmt.Errorf("libvirt network %q: %w", n.Network, err)
	}
	leases, _, err := p.l.NetworkGetDhcpLeases(network, golibvirt.OptString{n.MAC}, 1, 0)
	if err != nil {
		return "", fmt.Errorf("read DHCP leases of network %q: %w", n.Network, err)
	}
	if ip := leaseAddress(leases, n.MAC); ip != "" {
		return ip, nil
	}
	if p.t.ssh == nil {
		if ip := arpAddress(n.MAC); ip != "" {
			return ip, nil
		}
	}
	return "", fmt.Errorf("machine %q (MAC %s) has no address on network %q yet: no DHCP lease and no ARP entry; wait for it to boot", m.Name, n.MAC, n.Network)
}

// leaseAddress picks the IPv4 lease of mac, if any.
func leaseAddress(leases []golibvirt.NetworkDhcpLease, mac string) string {
	for _, l := range leases {
		if len(l.Mac) == 1 && strings.EqualFold(l.Mac[0], mac) && l.Type == 0 { // 0: IPv4
			return l.Ipaddr
		}
	}
	return ""
}

// parseARP finds mac in the text of /proc/net/arp.
func parseARP(table, mac string) string {
	for i, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if i == 0 || len(f) < 4 {
			continue
		}
		// IP address, HW type, Flags, HW address, Mask, Device; flags
		// 0x0 is an incomplete entry.
		if strings.EqualFold(f[3], mac) && f[2] != "0x0" {
			return f[0]
		}
	}
	return ""
}
