package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

// EnvOptions say what `env` prints.
type EnvOptions struct {
	Registry   *Registry
	Machine    *vm.Machine
	MachineDir string
	// Names are the services asked for; empty means every enabled one.
	Names []string
	// NoProxy adds the machine's address to NO_PROXY and no_proxy, keeping
	// the values of the current environment.
	NoProxy bool
	Getenv  func(string) string
	// Probe checks that a service answers (ProbeService unless a test
	// replaces it).
	Probe func(ctx context.Context, addr string) error
}

// Env builds the `env` document from local state: no SSH round trip.
// One TCP connect per service checks that it is up: a machine stopped
// behind devbundle's back gives ErrMachineNotRunning (exit 3), a service
// that does not answer gives ErrServiceUnavailable (exit 126).
func Env(ctx context.Context, opts EnvOptions) ([]envfmt.Block, error) {
	m := opts.Machine
	names := opts.Names
	all := len(names) == 0
	if all {
		for _, n := range opts.Registry.Names() {
			if _, ok := m.Services[n]; ok {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			return nil, dberr.WithHint(dberr.ServiceUnavailable("machine %q runs no service", m.Name), "run \"devbundle up --services docker\"")
		}
	}
	probe := opts.Probe
	if probe == nil {
		probe = ProbeService
	}
	var blocks []envfmt.Block
	for _, name := range names {
		svc, err := opts.Registry.Get(name)
		if err != nil {
			return nil, err
		}
		if _, ok := m.Services[name]; !ok {
			return nil, dberr.WithHint(dberr.ServiceUnavailable("service %q is not enabled on machine %q", name, m.Name),
				fmt.Sprintf("run \"devbundle up -m %s --services %s\"", m.Name, name))
		}
		info, err := svc.Env(m, Dir(opts.MachineDir, name))
		if err != nil {
			return nil, err
		}
		if info.Probe != "" {
			if err := probe(ctx, info.Probe); err != nil {
				if m.Via != nil {
					// The forwards bind the remote host's loopback: here
					// they answer only through `devbundle tunnel`.
					return nil, dberr.WithHint(dberr.ServiceUnavailable("service %q of machine %q on libvirt host %s does not answer at %s", name, m.Name, m.Via.Addr, info.Probe),
						TunnelHint(m))
				}
				if errors.Is(err, errRefused) {
					return nil, dberr.NotRunning(m.Name)
				}
				return nil, dberr.WithHint(dberr.ServiceUnavailable("service %q is not running on machine %q", name, m.Name),
					fmt.Sprintf("run \"devbundle service start %s\"", name))
			}
		}
		comment := info.Comment
		if all {
			comment = append([]string{name + " env:"}, comment...)
		}
		blocks = append(blocks, envfmt.Block{Comment: comment, Vars: info.Vars})
	}
	if opts.NoProxy {
		blocks = append(blocks, noProxyBlock(m, opts.Getenv))
	}
	return blocks, nil
}

// noProxyBlock adds the machine's address to NO_PROXY and no_proxy.
func noProxyBlock(m *vm.Machine, getenv func(string) string) envfmt.Block {
	addr := m.Address
	if addr == "" {
		addr = "127.0.0.1"
	}
	var vars []envfmt.Var
	for _, name := range []string{"NO_PROXY", "no_proxy"} {
		var parts []string
		for _, p := range strings.Split(getenv(name), ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		if !slices.Contains(parts, addr) {
			parts = append(parts, addr)
		}
		vars = append(vars, envfmt.Var{Name: name, Value: strings.Join(parts, ",")})
	}
	return envfmt.Block{Comment: []string{"Reach the machine without the proxy:"}, Vars: vars}
}

// TunnelHint says how the host's own clients reach the forwards of a
// machine on a remote libvirt host, which bind that host's loopback.
func TunnelHint(m *vm.Machine) string {
	return fmt.Sprintf("machine %q runs on libvirt host %s: keep \"devbundle tunnel -m %s\" running in another terminal", m.Name, m.Via.Addr, m.Name)
}

// errRefused means nothing listens on the host side: the VM (and the
// forward QEMU holds open for it) is gone.
var errRefused = errors.New("connection refused")

// errNoAnswer means the forward exists but the service behind it does not
// answer.
var errNoAnswer = errors.New("service does not answer")

// tlsProbe is the header of a TLS handshake record with no body: every TLS
// server (docker, kube-apiserver, OpenShift) answers it at once with an
// alert, while a user-mode forward whose guest port is closed just closes.
var tlsProbe = []byte{0x16, 0x03, 0x01, 0x00, 0x00}

// ProbeService connects to addr and checks that a TLS server answers. It
// returns errRefused when nothing listens and errNoAnswer when the
// connection closes without a reply.
func ProbeService(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if isRefused(err) {
			return errRefused
		}
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write(tlsProbe); err != nil {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	var b [1]byte
	n, err := conn.Read(b[:])
	if n == 1 {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		return errNoAnswer
	}
	return fmt.Errorf("%w: %w", errNoAnswer, err)
}
