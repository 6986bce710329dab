// Package vm creates, runs and removes machines: the provider interface
// that libvirt and VirtualBox implement, the per-machine store, and the
// lifecycle that `up`, `halt` and `destroy` drive.
package vm

import (
	"context"
	"errors"

	"github.com/devbundle/devbundle/vm/sshc"
)

// State is a machine's power state as a provider sees it.
type State string

// Machine states. Every command that prints a state uses these words.
const (
	StateNotCreated State = "not created"
	StateRunning    State = "running"
	StateHalted     State = "halted"
	StatePaused     State = "paused"
	StateUnknown    State = "unknown"
)

// ErrNotFound is returned by providers when the machine's VM does not
// exist (any more) on the hypervisor.
var ErrNotFound = errors.New("vm not found")

// Forward is one TCP port forwarded from the host's loopback to the guest.
type Forward struct {
	Name      string `json:"name"`       // "ssh", "docker", "kubernetes", ...
	GuestPort int    `json:"guest_port"` // port inside the VM
	HostIP    string `json:"host_ip"`    // always 127.0.0.1 in user mode
	HostPort  int    `json:"host_port"`  // picked free at create time
}

// Disk is one image a machine boots from, taken from the box.
type Disk struct {
	// Path is the image file in the box store.
	Path string
	// Format is the image format ("qcow2", "vmdk", ...).
	Format string
	// Key identifies the image across machines, so a provider can share one
	// uploaded copy: box name, version, architecture, provider and file.
	Key string
}

// Spec is what a provider needs to create a machine.
type Spec struct {
	Name      string // machine name, unique per user
	Dir       string // the machine's folder (0700)
	Disks     []Disk // from the box; the first one boots
	BoxOVF    string // VirtualBox: the box's .ovf file
	BaseMAC   string // VirtualBox: the MAC the box's Vagrantfile sets
	CPUs      int
	MemoryMiB int
	DiskGiB   int    // grow the boot disk to this size; 0 keeps the box's
	Accel     string // auto, kvm or tcg
	// Forwards lists the guest ports to reach from the host; the provider
	// fills HostPort (and HostIP) and returns them in Created.
	Forwards []Forward
	// ConsoleLog is where the serial console is written; the provider may
	// choose another place the hypervisor can write and report it.
	ConsoleLog string
}

// Created is what a provider reports after creating a machine; it is
// saved in the machine's state.
type Created struct {
	ID         string    // provider's identifier: domain name, VM UUID
	Forwards   []Forward // with host ports filled in
	ConsoleLog string    // where the console log really is
	Accel      string    // the accelerator in use ("kvm" or "tcg")
	Warnings   []string  // one-line warnings to show the user (e.g. TCG fallback)
}

// Provider is what every hypervisor backend implements. All methods take
// the machine's saved state, so a provider keeps nothing in memory between
// commands.
type Provider interface {
	// Name is "libvirt" or "virtualbox".
	Name() string
	// Create defines the VM (disks, network, forwards) without starting it.
	Create(ctx context.Context, spec Spec) (Created, error)
	// Start boots a created VM.
	Start(ctx context.Context, m *Machine) error
	// Halt shuts the VM down: an ACPI request, a wait under ctx's deadline,
	// then power off. With force it powers off at once.
	Halt(ctx context.Context, m *Machine, force bool) error
	// Destroy removes the VM and every volume it owns; shared base images
	// stay while a box or another machine uses them. A VM already gone is
	// not an error.
	Destroy(ctx context.Context, m *Machine) error
	// State reports the VM's power state; StateNotCreated when it is gone.
	State(ctx context.Context, m *Machine) (State, error)
	// Close releases the connection to the hypervisor.
	Close() error
}

// Addresser is implemented by providers whose machines have an address of
// their own the host can route to (libvirt network mode, host-only
// networks).
type Addresser interface {
	Address(ctx context.Context, m *Machine) (string, error)
}

// ForwardReconciler is implemented by providers that can change the
// forwarded ports of an existing machine (applied at next start).
type ForwardReconciler interface {
	SetForwards(ctx context.Context, m *Machine, forwards []Forward) ([]Forward, error)
}

// LiveForwarder is implemented by providers that can change the
// forwarded ports of a running machine at once (and for its next starts).
type LiveForwarder interface {
	SetForwardsLive(ctx context.Context, m *Machine, forwards []Forward) ([]Forward, error)
}

// Hopper is implemented by providers whose hypervisor may run on another
// host: the machine's forwards then bind that host's loopback and are
// reached through an SSH connection to it.
type Hopper interface {
	Hop() (sshc.Hop, bool)
}

// HostOnlyNIC is implemented by providers that can give a machine a second
// adapter on a network the host routes to (VirtualBox host-only), whose
// address only the guest knows: `up` reads it over SSH by the adapter's MAC
// and records it as the machine's address.
type HostOnlyNIC interface {
	// HostOnlyMAC returns that adapter's MAC ("08:00:27:12:34:56"); ok is
	// false when the machine has none.
	HostOnlyMAC(ctx context.Context, m *Machine) (mac string, ok bool, err error)
}
