package virtualbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/filelock"
	"github.com/devbundle/devbundle/vm"
)

const loopback = "127.0.0.1"

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

// fillForwards gives every forward HostIP 127.0.0.1 and, when it has
// none, a host port free on this host and unused by other devbundle VMs.
func (p *Provider) fillForwards(ctx context.Context, forwards []vm.Forward, skipUUID string) ([]vm.Forward, error) {
	out := slices.Clone(forwards)
	seenGuest := map[int]string{}
	seenName := map[string]bool{}
	need := 0
	for i, f := range out {
		if f.Name == "" || strings.ContainsAny(f.Name, ",\"") {
			return nil, fmt.Errorf("forward name %q is empty or holds a comma or quote, which VirtualBox's NAT rules cannot carry", f.Name)
		}
		if seenName[f.Name] {
			return nil, fmt.Errorf("two forwards are named %q", f.Name)
		}
		seenName[f.Name] = true
		if f.GuestPort < 1 || f.GuestPort > 65535 {
			return nil, fmt.Errorf("forward %q: guest port %d is out of range", f.Name, f.GuestPort)
		}
		if other, dup := seenGuest[f.GuestPort]; dup {
			return nil, fmt.Errorf("forwards %q and %q both name guest port %d", other, f.Name, f.GuestPort)
		}
		seenGuest[f.GuestPort] = f.Name
		if f.HostIP != "" && f.HostIP != loopback {
			return nil, fmt.Errorf("forward %q asks for host address %q; devbundle binds forwards to 127.0.0.1 only", f.Name, f.HostIP)
		}
		out[i].HostIP = loopback
		if f.HostPort == 0 {
			need++
		} else if f.HostPort < 1 || f.HostPort > 65535 {
			return nil, fmt.Errorf("forward %q: host port %d is out of range", f.Name, f.HostPort)
		}
	}
	if need == 0 {
		return out, nil
	}
	avoid, err := p.usedPorts(ctx, skipUUID)
	if err != nil {
		return nil, err
	}
	for _, f := range out {
		avoid[f.HostPort] = true
	}
	ports, err := pickPorts(ctx, need, avoid)
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

// pickPorts returns n distinct ports free on 127.0.0.1 and not in avoid.
// The listeners stay open until all are picked, so the kernel does not
// hand out one port twice.
func pickPorts(ctx context.Context, n int, avoid map[int]bool) ([]int, error) {
	var lc net.ListenConfig
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
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		held = append(held, l)
		port := l.Addr().(*net.TCPAddr).Port
		if !avoid[port] && !slices.Contains(ports, port) {
			ports = append(ports, port)
		}
	}
	return ports, nil
}

// portsInUse reports the forwards whose host port something on this host
// already listens on: VirtualBox would start the VM anyway and leave the
// forward dead.
func portsInUse(ctx context.Context, rules []natRule) error {
	var busy []string
	for _, r := range rules {
		host := r.HostIP
		if host == "" {
			host = loopback
		}
		addr := net.JoinHostPort(host, strconv.Itoa(r.HostPort))
		d := net.Dialer{Timeout: 500 * time.Millisecond}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = c.Close()
			busy = append(busy, fmt.Sprintf("%s (%s)", addr, r.Name))
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("host port(s) %s already in use by another program; stop that program and start the machine again", strings.Join(busy, ", "))
	}
	return nil
}
