package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/devbundle/devbundle/internal/filelock"
	"github.com/devbundle/devbundle/vm"
)

// lock takes a lock shared by every devbundle process of this user.
func (p *Provider) lock(ctx context.Context, name string) (func(), error) {
	dir := filepath.Join(p.opts.CacheDir, "locks")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create lock folder: %w", err)
	}
	u, err := filelock.Lock(ctx, filepath.Join(dir, "virtualbox-"+name+".lock"))
	if err != nil {
		return nil, err
	}
	return func() { _ = u() }, nil
}

// usedPorts lists the host ports the NAT rules of every other devbundle VM
// hold, running or not, so a halted machine keeps its ports.
func (p *Provider) usedPorts(ctx context.Context, skipUUID string) (map[int]bool, error) {
	out, err := p.v.run(ctx, "list", "vms")
	if err != nil {
		return nil, fmt.Errorf("list VirtualBox VMs: %w", err)
	}
	used := map[int]bool{}
	for _, e := range parseListVMs(out) {
		if !strings.HasPrefix(e.Name, vmPrefix) || e.UUID == skipUUID {
			continue
		}
		info, err := p.info(ctx, e.UUID)
		if errors.Is(err, vm.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		for _, r := range info.Forwards {
			used[r.HostPort] = true
		}
	}
	return used, nil
}

// fillForwards checks forwards for what VirtualBox's NAT rules can carry
// (a name each, unique, without commas or quotes), then gives every one
// HostIP 127.0.0.1 and, when it has none, a host port free on this host and
// unused by other devbundle VMs (asked of VirtualBox only when needed).
func (p *Provider) fillForwards(ctx context.Context, forwards []vm.Forward, skipUUID string) ([]vm.Forward, error) {
	seenName := map[string]bool{}
	for _, f := range forwards {
		if f.Name == "" || strings.ContainsAny(f.Name, ",\"") {
			return nil, fmt.Errorf("forward name %q is empty or holds a comma or quote, which VirtualBox's NAT rules cannot carry", f.Name)
		}
		if seenName[f.Name] {
			return nil, fmt.Errorf("two forwards are named %q", f.Name)
		}
		seenName[f.Name] = true
	}
	var pp vm.PortPicker
	if vm.MissingHostPorts(forwards) > 0 {
		avoid, err := p.usedPorts(ctx, skipUUID)
		if err != nil {
			return nil, err
		}
		pp.Avoid = avoid
	}
	return vm.FillForwards(forwards, pp)
}

// portsInUse reports the NAT rules whose host port another program holds:
// VirtualBox would start the VM anyway and leave the forward dead.
func portsInUse(ctx context.Context, rules []natRule) error {
	forwards := make([]vm.Forward, 0, len(rules))
	for _, r := range rules {
		forwards = append(forwards, vm.Forward{Name: r.Name, GuestPort: r.GuestPort, HostIP: r.HostIP, HostPort: r.HostPort})
	}
	return vm.PortsInUse(ctx, forwards)
}
