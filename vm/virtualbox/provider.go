// Package virtualbox is devbundle's VirtualBox provider, for the Windows
// and macOS users who have VirtualBox as their hypervisor. It drives
// VBoxManage, VirtualBox's command-line tool, through one seam (vbm).
//
// A machine is a VM imported from the box's box.ovf under a unique name
// ("devbundle-<machine>-<8 hex digits>") into a folder of that name inside
// the machine's folder, disks included. Its first network adapter is NAT
// with every forward bound to 127.0.0.1 on a host port picked free; an
// optional second adapter joins a host-only network. The serial console
// is written to a file in the VM's folder. The VM's UUID is the machine's
// ID; nothing is kept in memory between commands.
//
// Nothing here has run against a real VirtualBox yet: the tests drive a
// fake VBoxManage (internal/fakevbox) that answers in the formats of
// VirtualBox 7's VBoxManage.
package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/virtualbox/vboxpath"
)

// Options configure a Provider.
type Options struct {
	// VBoxManage is the tool's path; empty means search for it (see
	// vboxpath.Find).
	VBoxManage string
	// CacheDir holds the lock that keeps two devbundle processes from
	// picking the same host ports. Required.
	CacheDir string
	// MachinesDir is the folder machines' folders are in. When set, the
	// VM of a machine whose create was interrupted (no ID recorded) is
	// only taken for that machine's if it lives in MachinesDir/<machine>.
	MachinesDir string
	// HostOnly, when set, adds a second network adapter on a host-only
	// network, so the machine also has an address of its own.
	HostOnly HostOnly
	// Getenv reads the environment (os.Getenv).
	Getenv func(string) string
}

// HostOnly names the host-only network a machine's second adapter joins.
// Set one of the two.
type HostOnly struct {
	// Adapter is a host-only interface such as "vboxnet0" (VirtualBox on
	// Linux and Windows, and before 7.0 on macOS).
	Adapter string
	// Network is a host-only network by name, as VirtualBox 7 on macOS
	// has them ("VBoxManage hostonlynet").
	Network string
}

// Provider is the VirtualBox provider.
type Provider struct {
	v       *vbm
	opts    Options
	version vboxpath.Version
	// haltPoll is how often Halt looks whether the guest has powered off.
	haltPoll time.Duration
}

var (
	_ vm.Provider          = (*Provider)(nil)
	_ vm.ForwardReconciler = (*Provider)(nil)
	_ vm.LiveForwarder     = (*Provider)(nil)
	_ vm.HostOnlyNIC       = (*Provider)(nil)
)

// minMajor, minMinor is the oldest VirtualBox devbundle drives: import's
// --basefolder and the machine-readable escapes came with 6.1.
const minMajor, minMinor = 6, 1

// New finds VBoxManage and checks its version.
func New(ctx context.Context, opts Options) (*Provider, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if opts.CacheDir == "" {
		return nil, errors.New("virtualbox provider: no cache folder given (Options.CacheDir)")
	}
	if opts.HostOnly.Adapter != "" && opts.HostOnly.Network != "" {
		return nil, fmt.Errorf("host-only adapter %q and host-only network %q both given; set one", opts.HostOnly.Adapter, opts.HostOnly.Network)
	}
	path := opts.VBoxManage
	if path == "" {
		var err error
		if path, err = vboxpath.Find(vboxpath.FindOptions{Getenv: opts.Getenv}); err != nil {
			return nil, err
		}
	}
	p := &Provider{v: &vbm{path: path}, opts: opts}
	out, err := p.v.run(ctx, "--version")
	if err != nil {
		return nil, fmt.Errorf("VBoxManage at %q does not run: %w; reinstall VirtualBox from %s", path, err, vboxpath.DownloadURL)
	}
	if p.version, err = vboxpath.ParseVersion(out); err != nil {
		return nil, err
	}
	if !p.version.AtLeast(minMajor, minMinor) {
		return nil, fmt.Errorf("VirtualBox %s at %q is too old; devbundle needs %d.%d or newer: install VirtualBox 7 from %s",
			p.version, path, minMajor, minMinor, vboxpath.DownloadURL)
	}
	return p, nil
}

// Name is "virtualbox".
func (p *Provider) Name() string { return "virtualbox" }

// Version is the VirtualBox version VBoxManage reported.
func (p *Provider) Version() vboxpath.Version { return p.version }

// VBoxManage is the path of the VBoxManage the provider runs.
func (p *Provider) VBoxManage() string { return p.v.path }

// Close does nothing: every call runs VBoxManage anew.
func (p *Provider) Close() error { return nil }
