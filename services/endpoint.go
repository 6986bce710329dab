package services

import (
	"fmt"
	"strings"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

// ForwardEndpoint is the host and port the host reaches a service's
// guest port at: the VM's own address in network mode, else the forward
// named name on 127.0.0.1 (or the forward's own host address).
func ForwardEndpoint(m *vm.Machine, name string, guestPort int) (host string, port int, err error) {
	if m.Network == vm.NetworkModeLibvirt {
		if m.Address == "" {
			return "", 0, fmt.Errorf("machine %q is in network mode but has no address recorded; run \"devbundle up -m %s\" again", m.Name, m.Name)
		}
		return m.Address, guestPort, nil
	}
	f, ok := m.Forward(name)
	if !ok || f.HostPort == 0 {
		service := name
		if s, _, found := strings.Cut(name, "-"); found {
			service = s
		}
		return "", 0, dberr.WithHint(
			fmt.Errorf("machine %q has no forwarded port %q (guest port %d)", m.Name, name, guestPort),
			fmt.Sprintf("halt the machine and bring it up with %s so the port is added: \"devbundle halt -m %s\" then \"devbundle up -m %s --services %s\"", service, m.Name, m.Name, service))
	}
	host = f.HostIP
	if host == "" {
		host = "127.0.0.1"
	}
	return host, f.HostPort, nil
}
