// Package kubernetes is devbundle's kubernetes service: a single-node
// Kubernetes control plane that the box carries, started in the machine
// and reached from the host with a kubeconfig devbundle writes.
//
// Three kinds of boxes are understood (see Flavour): plain systemd units
// for each component (the test box, the old ADB box), kubeadm's static
// pods under the kubelet, and k3s. Enable starts what is stopped, in
// order; waits for /readyz from the host; takes the admin credentials of
// the box (admin.conf, k3s.yaml, or a client certificate it signs in the
// guest with the cluster CA's key); writes the host's kubeconfig (0600,
// the CA embedded, never insecure-skip-tls-verify); and records the
// server's version from /version.
package kubernetes

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// Name is the service's name.
const Name = "kubernetes"

// GuestPort is the API server's secure port in the machine.
const GuestPort = 6443

// KubeconfigFile is the kubeconfig's name in the service's folder.
const KubeconfigFile = "kubeconfig"

// Options change how the service works; the zero value is the default.
type Options struct {
	// ReadyTimeout bounds the wait for /readyz after the control plane
	// (re)starts (default 8 minutes: under software emulation etcd and the
	// API server take minutes to come up).
	ReadyTimeout time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Service is the kubernetes service.
type Service struct {
	opts Options
}

var (
	_ services.Service   = (*Service)(nil)
	_ services.Versioner = (*Service)(nil)
)

// New returns the kubernetes service.
func New(opts Options) *Service {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 8 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts}
}

// Name is "kubernetes".
func (s *Service) Name() string { return Name }

// Ports is the API server's secure port.
func (s *Service) Ports() []vm.Forward {
	return []vm.Forward{{Name: Name, GuestPort: GuestPort}}
}

// State is what Enable records in the machine's state.
type State struct {
	// Flavour is how the box runs Kubernetes (FlavourUnits, ...).
	Flavour Flavour `json:"flavour"`
	// Version is the server's gitVersion from GET /version.
	Version string `json:"version"`
	// Endpoint is the host:port the kubeconfig's server names.
	Endpoint  string `json:"endpoint"`
	GuestPort int    `json:"guest_port"`
	// TLSServerName is the name the kubeconfig checks the server's
	// certificate against when the endpoint's host is not in it.
	TLSServerName string `json:"tls_server_name,omitempty"`
	// CAFingerprint is the SHA-256 of the cluster CA's DER.
	CAFingerprint string `json:"ca_sha256"`
	// Credentials says where the admin credentials came from (a guest
	// path).
	Credentials string `json:"credentials"`
}

// ReadState returns what the service recorded for m; ok is false when it
// was never enabled.
func ReadState(m *vm.Machine) (State, bool, error) {
	return services.ReadState[State](m, Name)
}

// Endpoint is the host and port the host reaches the API server at: the
// VM's own address in network mode, else the "kubernetes" forward.
func Endpoint(m *vm.Machine) (host string, port int, err error) {
	return services.ForwardEndpoint(m, Name, GuestPort)
}

// KubeconfigPath is the kubeconfig in the service's folder dir.
func KubeconfigPath(dir string) string { return filepath.Join(dir, KubeconfigFile) }

var envComment = []string{
	"Set the following environment variable to point kubectl at the",
	"Kubernetes cluster running inside of the devbundle virtual machine:",
}

// Env returns KUBECONFIG from the machine's state alone. It refuses (exit
// 126) when the service was never enabled, when the kubeconfig is gone,
// or when the endpoint the host would use changed since the last `up`.
func (s *Service) Env(m *vm.Machine, dir string) (services.EnvInfo, error) {
	st, ok, err := ReadState(m)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	upHint := fmt.Sprintf("run \"devbundle up -m %s --services kubernetes\"", m.Name)
	if !ok || st.Version == "" {
		return services.EnvInfo{}, dberr.WithHint(dberr.ServiceUnavailable("kubernetes was never enabled on machine %q", m.Name), upHint)
	}
	host, port, err := Endpoint(m)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if addr != st.Endpoint {
		return services.EnvInfo{}, dberr.WithHint(
			dberr.ServiceUnavailable("the kubeconfig of machine %q points at %s, but the API server is now at %s", m.Name, st.Endpoint, addr),
			fmt.Sprintf("run \"devbundle up -m %s\" to rewrite it", m.Name))
	}
	path := KubeconfigPath(dir)
	if _, err := os.Stat(path); err != nil {
		return services.EnvInfo{}, dberr.WithHint(dberr.ServiceUnavailable("the kubeconfig of machine %q is missing: %w", m.Name, err),
			fmt.Sprintf("run \"devbundle up -m %s\" to write it again", m.Name))
	}
	return services.EnvInfo{
		Comment: slices.Clone(envComment),
		Vars:    []envfmt.Var{{Name: "KUBECONFIG", Value: path}},
		Probe:   addr,
	}, nil
}
