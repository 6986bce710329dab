package vm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Loopback is where every user-mode forward binds on the host.
const Loopback = "127.0.0.1"

// PortPicker hands out free TCP ports on 127.0.0.1. A port counts as free
// when the kernel gives it to a listener and it is not in Avoid (the ports
// the provider's other machines hold: halted ones are not listening).
type PortPicker struct {
	Avoid map[int]bool
	// Listen is net.Listen unless a test replaces it.
	Listen func(network, addr string) (net.Listener, error)
}

// Pick returns n distinct free ports. The listeners stay open until all
// are picked, so the kernel never hands out the same port twice.
func (pp PortPicker) Pick(n int) ([]int, error) {
	listen := pp.Listen
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
		l, err := listen("tcp", net.JoinHostPort(Loopback, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
		}
		held = append(held, l)
		p := l.Addr().(*net.TCPAddr).Port
		if pp.Avoid[p] || slices.Contains(ports, p) {
			continue
		}
		ports = append(ports, p)
	}
	return ports, nil
}

// MissingHostPorts counts the forwards that still need a host port.
func MissingHostPorts(forwards []Forward) int {
	n := 0
	for _, f := range forwards {
		if f.HostPort == 0 {
			n++
		}
	}
	return n
}

// FillForwards checks forwards and returns them with every HostIP set to
// 127.0.0.1 and every missing HostPort picked free. Ports given are kept
// (and never handed out to another forward).
func FillForwards(forwards []Forward, pp PortPicker) ([]Forward, error) {
	out := slices.Clone(forwards)
	avoid := map[int]bool{}
	for p := range pp.Avoid {
		avoid[p] = true
	}
	pp.Avoid = avoid
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
		if f.HostIP != "" && f.HostIP != Loopback {
			return nil, fmt.Errorf("forward %q asks for host address %q; forwards bind 127.0.0.1 only", f.Name, f.HostIP)
		}
		out[i].HostIP = Loopback
		if f.HostPort == 0 {
			need++
			continue
		}
		if f.HostPort < 1 || f.HostPort > 65535 {
			return nil, fmt.Errorf("forward %q: host port %d is out of range", f.Name, f.HostPort)
		}
		avoid[f.HostPort] = true
	}
	if need == 0 {
		return out, nil
	}
	ports, err := pp.Pick(need)
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

// PortsInUse checks that the host ports of forwards are free to bind now,
// before a VM that needs them starts: QEMU would fail with a message about
// "hostfwd" that says little, and VirtualBox would start the VM with the
// forward dead.
func PortsInUse(ctx context.Context, forwards []Forward) error {
	var busy []string
	var lc net.ListenConfig
	for _, f := range forwards {
		host := f.HostIP
		if host == "" {
			host = Loopback
		}
		l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(f.HostPort)))
		if err != nil {
			busy = append(busy, fmt.Sprintf("%s:%d (%s, guest port %d)", host, f.HostPort, f.Name, f.GuestPort))
			continue
		}
		_ = l.Close()
	}
	if len(busy) > 0 {
		return fmt.Errorf("host port(s) %s already in use by another program; stop that program and run \"devbundle up\" again", strings.Join(busy, ", "))
	}
	return nil
}
