package libvirt

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/devbundle/devbundle/vm"
)

// Ways a domain is wired to the network.
const (
	// netHostfwd: QEMU's user-mode stack (SLIRP) through the qemu XML
	// namespace, forwards as hostfwd rules. libvirt before 9.2 has no
	// port forwards for user-mode interfaces.
	netHostfwd = "hostfwd"
	// netPasst: <interface type='user'> with the passt backend and
	// <portForward> elements (libvirt >= 9.2 with passt installed).
	netPasst = "passt"
	// netLibvirt: <interface type='network'> on a libvirt network.
	netLibvirt = "network"
)

// The user-mode NIC's PCI slot: explicit, because QEMU places
// command-line devices before libvirt's own and slot 2 is the disk's.
const userNICAddr = "0x10"

// domainSpec is everything a machine's domain XML is made from.
type domainSpec struct {
	Name       string
	Accel      string // kvm or tcg
	CPUs       int
	MemoryMiB  int
	Disks      []string // overlay volume paths, boot disk first
	ConsoleLog string
	CPUMaximum bool // TCG: emulate QEMU's "max" CPU model
	Net        netSpec
}

// netSpec is how the domain is networked.
type netSpec struct {
	Mode     string       // netHostfwd, netPasst or netLibvirt
	Forwards []vm.Forward // user modes: host ports filled in
	Network  string       // netLibvirt: network name
	MAC      string       // netLibvirt: the NIC's MAC
}

// buildDomain makes the domain definition of a machine.
func buildDomain(s domainSpec) (*libvirtxml.Domain, error) {
	if s.Name == "" || len(s.Disks) == 0 || s.CPUs < 1 || s.MemoryMiB < 1 {
		return nil, fmt.Errorf("domain %q: name, disks, CPUs and memory are required", s.Name)
	}
	if len(s.Disks) > 26 {
		return nil, fmt.Errorf("domain %q: %d disks are more than devbundle can attach (26)", s.Name, len(s.Disks))
	}
	port0 := uint(0)
	d := &libvirtxml.Domain{
		Type:   domainType(s.Accel),
		Name:   s.Name,
		Title:  "devbundle machine",
		Memory: &libvirtxml.DomainMemory{Value: uint(s.MemoryMiB), Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: uint(s.CPUs)},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Features: &libvirtxml.DomainFeatureList{
			ACPI: &libvirtxml.DomainFeature{},
			APIC: &libvirtxml.DomainFeatureAPIC{},
		},
		Clock:      &libvirtxml.DomainClock{Offset: "utc"},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices:    &libvirtxml.DomainDeviceList{},
	}
	switch {
	case s.Accel == AccelKVM:
		d.CPU = &libvirtxml.DomainCPU{Mode: "host-passthrough"}
	case s.CPUMaximum:
		d.CPU = &libvirtxml.DomainCPU{Mode: "maximum"}
	}
	for i, path := range s.Disks {
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2"},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vd" + string(rune('a'+i)), Bus: "virtio"},
		})
	}
	if s.ConsoleLog != "" {
		src := func() *libvirtxml.DomainChardevSource {
			return &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: s.ConsoleLog, Append: "on"}}
		}
		d.Devices.Serials = []libvirtxml.DomainSerial{{Source: src(), Target: &libvirtxml.DomainSerialTarget{Port: &port0}}}
		d.Devices.Consoles = []libvirtxml.DomainConsole{{Source: src(), Target: &libvirtxml.DomainConsoleTarget{Type: "serial", Port: &port0}}}
	}
	// Entropy from the host: sshd's first key generation does not wait.
	d.Devices.RNGs = []libvirtxml.DomainRNG{{
		Model:   "virtio",
		Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
	}}
	if err := applyNet(d, s.Net); err != nil {
		return nil, err
	}
	return d, nil
}

// applyNet replaces the domain's networking with n. Every interface and
// QEMU argument of the domain is devbundle's, so all are replaced.
func applyNet(d *libvirtxml.Domain, n netSpec) error {
	if d.Devices == nil {
		d.Devices = &libvirtxml.DomainDeviceList{}
	}
	d.Devices.Interfaces = nil
	d.QEMUCommandline = nil
	for _, f := range n.Forwards {
		if n.Mode == netLibvirt {
			break
		}
		if f.GuestPort < 1 || f.GuestPort > 65535 || f.HostPort < 1 || f.HostPort > 65535 {
			return fmt.Errorf("forward %q: guest port %d or host port %d is out of range", f.Name, f.GuestPort, f.HostPort)
		}
		if f.HostIP != "127.0.0.1" {
			return fmt.Errorf("forward %q binds %q; user-mode forwards bind 127.0.0.1 only", f.Name, f.HostIP)
		}
	}
	switch n.Mode {
	case netHostfwd:
		netdev := "user,id=net0"
		for _, f := range n.Forwards {
			netdev += fmt.Sprintf(",hostfwd=tcp:%s:%d-:%d", f.HostIP, f.HostPort, f.GuestPort)
		}
		d.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{Args: []libvirtxml.DomainQEMUCommandlineArg{
			{Value: "-netdev"}, {Value: netdev},
			{Value: "-device"}, {Value: "virtio-net-pci,netdev=net0,bus=pci.0,addr=" + userNICAddr},
		}}
	case netPasst:
		iface := libvirtxml.DomainInterface{
			Source:  &libvirtxml.DomainInterfaceSource{User: &libvirtxml.DomainInterfaceSourceUser{}},
			Backend: &libvirtxml.DomainInterfaceBackend{Type: "passt"},
			Model:   &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}
		for _, f := range n.Forwards {
			iface.PortForward = append(iface.PortForward, libvirtxml.DomainInterfaceSourcePortForward{
				Proto:   "tcp",
				Address: f.HostIP,
				Ranges:  []libvirtxml.DomainInterfaceSourcePortForwardRange{{Start: uint(f.HostPort), To: uint(f.GuestPort)}},
			})
		}
		d.Devices.Interfaces = []libvirtxml.DomainInterface{iface}
	case netLibvirt:
		if n.Network == "" || n.MAC == "" {
			return fmt.Errorf("domain %q: network mode needs a network name and a MAC", d.Name)
		}
		d.Devices.Interfaces = []libvirtxml.DomainInterface{{
			MAC:    &libvirtxml.DomainInterfaceMAC{Address: n.MAC},
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}}
	default:
		return fmt.Errorf("domain %q: network wiring %q is not known", d.Name, n.Mode)
	}
	return nil
}

// netOf reads back how a domain devbundle defined is networked: the mode,
// the forwards (ports only; names are not kept in the XML), and, for a
// libvirt network, its name and the NIC's MAC.
func netOf(d *libvirtxml.Domain) netSpec {
	if d.QEMUCommandline != nil {
		for _, a := range d.QEMUCommandline.Args {
			if fw, ok := parseUserNetdev(a.Value); ok {
				return netSpec{Mode: netHostfwd, Forwards: fw}
			}
		}
	}
	if d.Devices != nil {
		for _, iface := range d.Devices.Interfaces {
			if iface.Source == nil {
				continue
			}
			switch {
			case iface.Source.User != nil:
				n := netSpec{Mode: netPasst}
				for _, pf := range iface.PortForward {
					for _, r := range pf.Ranges {
						to := r.To
						if to == 0 {
							to = r.Start
						}
						n.Forwards = append(n.Forwards, vm.Forward{HostIP: pf.Address, HostPort: int(r.Start), GuestPort: int(to)})
					}
				}
				return n
			case iface.Source.Network != nil:
				n := netSpec{Mode: netLibvirt, Network: iface.Source.Network.Network}
				if iface.MAC != nil {
					n.MAC = iface.MAC.Address
				}
				return n
			}
		}
	}
	return netSpec{}
}

// parseUserNetdev reads the forwards of a "-netdev user,..." value.
func parseUserNetdev(v string) ([]vm.Forward, bool) {
	if !strings.HasPrefix(v, "user,") {
		return nil, false
	}
	fw := []vm.Forward{}
	for _, opt := range strings.Split(v, ",") {
		rule, ok := strings.CutPrefix(opt, "hostfwd=")
		if !ok {
			continue
		}
		// tcp:HOSTADDR:HOSTPORT-GUESTADDR:GUESTPORT
		proto, rest, _ := strings.Cut(rule, ":")
		host, guest, ok := strings.Cut(rest, "-")
		if proto != "tcp" || !ok {
			continue
		}
		hip, hport, ok1 := strings.Cut(host, ":")
		_, gport, ok2 := strings.Cut(guest, ":")
		hp, err1 := strconv.Atoi(hport)
		gp, err2 := strconv.Atoi(gport)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			continue
		}
		fw = append(fw, vm.Forward{HostIP: hip, HostPort: hp, GuestPort: gp})
	}
	return fw, true
}

// diskPaths lists the file-backed disks of a domain.
func diskPaths(d *libvirtxml.Domain) []string {
	var out []string
	if d.Devices == nil {
		return nil
	}
	for _, disk := range d.Devices.Disks {
		if disk.Source != nil && disk.Source.File != nil && disk.Source.File.File != "" {
			out = append(out, disk.Source.File.File)
		}
	}
	return out
}

// consoleLogOf reads the serial console's log file from a domain.
func consoleLogOf(d *libvirtxml.Domain) string {
	if d.Devices == nil {
		return ""
	}
	for _, s := range d.Devices.Serials {
		if s.Source != nil && s.Source.File != nil {
			return s.Source.File.Path
		}
	}
	return ""
}
