package vm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/iostreams"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Phases of a machine's life, saved in its state so an interrupted `up`
// knows where to continue.
const (
	// PhaseCreating is saved before the provider creates anything: a
	// machine found in this phase may have half-made parts, which the next
	// `up` removes before creating it again.
	PhaseCreating = "creating"
	// PhaseCreated means the VM exists with its forwards recorded.
	PhaseCreated = "created"
	// PhaseReady means `up` finished: the machine key replaced the
	// insecure key and the services were set up.
	PhaseReady = "ready"
)

// BoxRequest names the box a machine should be made from.
type BoxRequest struct {
	Name       string // catalog name, URL or file
	Version    string // a version constraint; empty means the newest
	Provider   string
	Server     string // box server replacing the public registry
	Insecure   bool   // allow plain HTTP with no checksum
	Checksum   string // TYPE:HEX for a direct .box URL
	ForceCheck bool   // ask the catalog even when a matching box is stored
}

// BoxImage is a box in the store, ready to boot.
type BoxImage struct {
	Ref     BoxRef
	Disks   []Disk
	OVF     string
	BaseMAC string
}

// BoxSource finds a box in the store, adding it first when missing.
type BoxSource interface {
	Ensure(ctx context.Context, req BoxRequest) (BoxImage, error)
}

// Manager drives machines through their lifecycle: the one place `up`,
// `halt`, `destroy`, `status` and `ssh` call into.
type Manager struct {
	Store Store
	// Provider connects to the named provider. It is called at most once
	// per command; the Manager closes what it returns.
	Provider func(ctx context.Context, name string) (Provider, error)
	// Boxes adds and finds boxes.
	Boxes BoxSource
	// InsecureKeys returns the keys a fresh box authorizes.
	InsecureKeys func(ctx context.Context) ([]ssh.Signer, error)
	// IO receives step lines, warnings and hints (stderr).
	IO *iostreams.IOStreams
	// Now is the clock (time.Now).
	Now func() time.Time
	// Getenv reads the environment (os.Getenv): SSH_AUTH_SOCK for a hop.
	Getenv func(string) string
}

// HostDialer returns how the host reaches m's forwards: directly, or
// through an SSH connection to the remote libvirt host the machine runs
// on. release closes that connection.
func (mgr *Manager) HostDialer(ctx context.Context, m *Machine) (dial sshc.DialFunc, release func(), err error) {
	if m.Via == nil {
		return (&net.Dialer{}).DialContext, func() {}, nil
	}
	getenv := mgr.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	hop, err := sshc.DialHop(ctx, *m.Via, getenv)
	if err != nil {
		return nil, nil, err
	}
	return hop.DialContext, func() { _ = hop.Close() }, nil
}

// recordHop notes in m whether its provider's hypervisor runs on another
// host, and how to get there.
func recordHop(p Provider, m *Machine) {
	m.Via = nil
	if h, ok := p.(Hopper); ok {
		if hop, ok := h.Hop(); ok {
			m.Via = &hop
		}
	}
}

// waitSSH is sshc.Wait or sshc.EnsureMachineKey through the machine's hop,
// when it has one.
func (mgr *Manager) waitSSH(ctx context.Context, m *Machine, opts sshc.WaitOptions,
	wait func(context.Context, sshc.WaitOptions) (*sshc.Client, error)) (*sshc.Client, error) {
	if m.Via == nil {
		return wait(ctx, opts)
	}
	dial, release, err := mgr.HostDialer(ctx, m)
	if err != nil {
		return nil, err
	}
	opts.Dial = dial
	c, err := wait(ctx, opts)
	if err != nil {
		release()
		return nil, err
	}
	c.AlsoClose(closerFunc(release))
	return c, nil
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// load returns the machine's state, or an error saying it was never
// created.
func (mgr *Manager) load(name string) (*Machine, error) {
	m, err := mgr.Store.Load(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, notCreated(name)
	}
	return m, err
}

// lock takes the machine's lock, saying so when another command holds it.
func (mgr *Manager) lock(ctx context.Context, name string) (func(), error) {
	unlock, ok, err := mgr.Store.TryLock(name)
	if err != nil {
		return nil, err
	}
	if ok {
		return unlock, nil
	}
	mgr.IO.Infof("waiting for another devbundle command on machine %q to finish ...", name)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	unlock, err = mgr.Store.Lock(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("another devbundle command is still working on machine %q: %w", name, err)
	}
	return unlock, nil
}

// machineKeyPath is the machine's own SSH private key.
func (mgr *Manager) machineKeyPath(name string) string {
	return filepath.Join(mgr.Store.Dir(name), KeyFile)
}

// pinning returns the machine's host key pinning.
func (mgr *Manager) pinning(name string, firstBoot bool) *sshc.Pinning {
	return &sshc.Pinning{
		File:            filepath.Join(mgr.Store.Dir(name), KnownHostsFile),
		Alias:           sshc.HostKeyAlias(name),
		TrustOnFirstUse: firstBoot,
	}
}

// sshAddr is where the machine's sshd is reached from the host.
func sshAddr(m *Machine) (string, error) {
	host, port, err := m.SSHEndpoint()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// Connect logs in to a running machine with its own key, checking the
// pinned host key. A machine that is not running gives ErrMachineNotRunning.
func (mgr *Manager) Connect(ctx context.Context, name string) (*sshc.Client, *Machine, error) {
	m, err := mgr.Store.LoadReachable(name)
	if err != nil {
		return nil, nil, err
	}
	addr, err := sshAddr(m)
	if err != nil {
		return nil, nil, err
	}
	key, err := sshc.LoadOrCreateKey(mgr.machineKeyPath(name), "devbundle machine "+name)
	if err != nil {
		return nil, nil, err
	}
	pin := mgr.pinning(name, false)
	algos, err := pin.HostKeyAlgorithms()
	if err != nil {
		return nil, nil, err
	}
	c, err := mgr.waitSSH(ctx, m, sshc.WaitOptions{
		Addr: addr, User: m.SSH.User, Signers: []ssh.Signer{key},
		HostKeyCallback: pin.HostKeyCallback(), HostKeyAlgorithms: algos,
		Timeout: 10 * time.Second, MaxBackoff: time.Second,
	}, sshc.Wait)
	if err != nil {
		var changed *sshc.HostKeyChangedError
		if errors.As(err, &changed) {
			return nil, nil, err
		}
		// Nothing answers: find out whether the machine is simply down.
		if st, serr := mgr.state(ctx, m); serr == nil && st != StateRunning {
			return nil, nil, dberr.NotRunning(name)
		}
		return nil, nil, err
	}
	return c, m, nil
}

// state asks the machine's provider for its power state.
func (mgr *Manager) state(ctx context.Context, m *Machine) (State, error) {
	p, err := mgr.Provider(ctx, m.Provider)
	if err != nil {
		return StateUnknown, err
	}
	defer p.Close()
	return p.State(ctx, m)
}
