package vm

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/devbundle/devbundle/vm/sshc"
)

// Network modes of a machine.
const (
	// NetworkModeUser is user-mode networking: the machine is reached
	// through forwards on the host's 127.0.0.1.
	NetworkModeUser = "user"
	// NetworkModeLibvirt puts the machine on a libvirt network, where it
	// has an address of its own (Machine.Address).
	NetworkModeLibvirt = "network"
)

// Machine is the saved state of one machine (state.json in its folder).
// It is the single source `env` and `status` answer from.
type Machine struct {
	Name     string    `json:"name"`
	Provider string    `json:"provider"`
	ID       string    `json:"id"` // provider's identifier
	Created  time.Time `json:"created"`
	// Phase is PhaseCreating, PhaseCreated or PhaseReady.
	Phase string `json:"phase"`

	Box BoxRef `json:"box"`

	CPUs      int    `json:"cpus"`
	MemoryMiB int    `json:"memory_mib"`
	DiskGiB   int    `json:"disk_gib,omitempty"`
	Accel     string `json:"accel,omitempty"`

	// Network is "user" (forwards on 127.0.0.1) or "network".
	Network  string    `json:"network"`
	Address  string    `json:"address,omitempty"` // the VM's own address, network mode
	Forwards []Forward `json:"forwards"`
	// Via is the SSH server the forwards are reached through when the
	// hypervisor runs on another host (qemu+ssh://); nil for this host.
	Via *sshc.Hop `json:"via,omitempty"`

	SSH SSHInfo `json:"ssh"`

	ConsoleLog string `json:"console_log,omitempty"`

	// Services holds what each enabled service recorded (versions, ports,
	// certificate fingerprints), by service name.
	Services map[string]json.RawMessage `json:"services,omitempty"`
}

// BoxRef names the box a machine was made from.
type BoxRef struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Architecture string `json:"architecture"`
	Provider     string `json:"provider"`
}

func (b BoxRef) String() string {
	return fmt.Sprintf("%s (%s, %s, %s)", b.Name, b.Version, b.Provider, b.Architecture)
}

// SSHInfo is how to reach the machine's sshd.
type SSHInfo struct {
	User string `json:"user"`
	// KeyReplaced is true once the box's insecure key has been swapped for
	// the machine's own.
	KeyReplaced bool `json:"key_replaced"`
}

// Forward returns the forward with the given name.
func (m *Machine) Forward(name string) (Forward, bool) {
	for _, f := range m.Forwards {
		if f.Name == name {
			return f, true
		}
	}
	return Forward{}, false
}

// Reachable reports whether the machine can be logged in to with its own
// key: true once the first `up` replaced the box's insecure key, even if a
// later step of that `up` (a service) failed.
func (m *Machine) Reachable() bool {
	return m.Phase == PhaseReady || m.SSH.KeyReplaced
}

// SSHEndpoint is where the host reaches the machine's sshd: its SSH
// forward (127.0.0.1 in user mode), or port 22 of its own address on a
// libvirt network.
func (m *Machine) SSHEndpoint() (host string, port int, err error) {
	if f, ok := m.Forward("ssh"); ok && f.HostPort != 0 {
		host = f.HostIP
		if host == "" {
			host = "127.0.0.1"
		}
		return host, f.HostPort, nil
	}
	if m.Address != "" {
		return m.Address, 22, nil
	}
	return "", 0, fmt.Errorf("machine %q has no SSH forward or address recorded; run \"devbundle up -m %s\" again", m.Name, m.Name)
}
