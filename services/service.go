// Package services sets up and drives the container services inside a
// machine (docker, kubernetes, openshift) and says how the host reaches
// them.
//
// A Service talks to the guest only through the narrow Guest interface
// (run a command, read its output, upload a file, dial a port), never
// through a whole SSH client, so its logic is testable on its own and the
// same code serves every provider.
package services

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"sort"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// Guest is what a service needs from a logged-in machine.
type Guest interface {
	Run(ctx context.Context, cmd string, opts sshc.RunOptions) (exitCode int, err error)
	Output(ctx context.Context, cmd string) ([]byte, error)
	Upload(ctx context.Context, path string, data []byte, mode os.FileMode, opts sshc.UploadOptions) error
	DialTCP(ctx context.Context, addr string) (net.Conn, error)
}

var _ Guest = (*sshc.Client)(nil)

// Status of a service inside the machine.
type Status string

// Service states, as `service status` prints them.
const (
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
	// StatusUnavailable: the box has no such service.
	StatusUnavailable Status = "unavailable"
)

// Context is what a service gets to work with.
type Context struct {
	Guest   Guest
	Machine *vm.Machine
	// Dir is the service's own folder on the host, inside the machine's
	// folder (0700): certificates, kubeconfig.
	Dir string
	// Proxy is the HTTP(S) proxy for the guest, "" for none.
	Proxy string
	// Log receives progress lines and warnings (stderr).
	Log func(format string, args ...any)
	// Dial is how the host reaches the machine's forwards: nil dials
	// directly; a machine on a remote libvirt host is reached through an
	// SSH connection to that host.
	Dial sshc.DialFunc
}

// Service is one container service.
type Service interface {
	// Name is "docker", "kubernetes" or "openshift".
	Name() string
	// Ports are the guest ports the host must reach, forwarded by the
	// provider; their names are "<service>" or "<service>-<what>".
	Ports() []vm.Forward
	// Enable sets the service up and starts it; it runs during every `up`
	// (so it must be idempotent and cheap when nothing changed) and returns
	// what the service records in the machine's state.
	Enable(ctx context.Context, sc Context) (json.RawMessage, error)
	// Start, Stop and Status drive the service's units in the guest.
	Start(ctx context.Context, sc Context) error
	Stop(ctx context.Context, sc Context) error
	Status(ctx context.Context, sc Context) (Status, error)
	// Env returns the variables that point host clients at the service,
	// from local state only (no SSH round trip).
	Env(m *vm.Machine, dir string) (EnvInfo, error)
}

// EnvInfo is one service's block of `env` output.
type EnvInfo struct {
	Comment []string
	Vars    []envfmt.Var
	// Probe is a host:port that answers when the service runs: one TCP
	// connect tells a machine stopped behind devbundle's back.
	Probe string
}

// ErrUnknown is returned for a service name devbundle does not know.
var ErrUnknown = errors.New("unknown service")

// Registry holds the services by name.
type Registry struct {
	byName map[string]Service
}

// NewRegistry returns a registry of the given services.
func NewRegistry(list ...Service) *Registry {
	r := &Registry{byName: map[string]Service{}}
	for _, s := range list {
		r.byName[s.Name()] = s
	}
	return r
}

// Get returns the named service, or an error of kind
// dberr.ErrServiceUnavailable (exit 126).
func (r *Registry) Get(name string) (Service, error) {
	s, ok := r.byName[name]
	if !ok {
		return nil, dberr.ServiceUnavailable("unknown service %q; known services: %v", name, r.Names())
	}
	return s, nil
}

// Names lists the known services, sorted.
func (r *Registry) Names() []string {
	var names []string
	for n := range r.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Ports returns the forwards the named services need.
func (r *Registry) Ports(names []string) ([]vm.Forward, error) {
	var out []vm.Forward
	for _, n := range names {
		s, err := r.Get(n)
		if err != nil {
			return nil, err
		}
		out = append(out, s.Ports()...)
	}
	return out, nil
}
