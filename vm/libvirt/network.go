package libvirt

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

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
