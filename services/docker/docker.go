// Package docker is devbundle's docker service: dockerd in the machine,
// reached from the host over TCP with mutual TLS.
//
// Enable makes a per-machine CA, a server certificate for every address
// the host uses and a client certificate on the host; uploads the CA and
// the server pair into the guest; points dockerd at them with a systemd
// drop-in (tcp://0.0.0.0:2376 with --tlsverify, beside its unix socket);
// installs dockerd first when the box lacks it; and checks the Engine API
// over TLS before it reports success.
package docker

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// Name is the service's name.
const Name = "docker"

// GuestPort is where dockerd listens with TLS inside the machine. Plain
// TCP (2375) is never opened.
const GuestPort = 2376

// Options change how the service works; the zero value is the default.
type Options struct {
	// VerifyTimeout bounds the wait for the Engine API to answer over TLS
	// after dockerd (re)starts (default 3 minutes: dockerd is slow under
	// software emulation).
	VerifyTimeout time.Duration
	// Now is the clock for certificates (time.Now when nil).
	Now func() time.Time
}

// Service is the docker service.
type Service struct {
	opts Options
}

var _ services.Service = (*Service)(nil)

// New returns the docker service.
func New(opts Options) *Service {
	if opts.VerifyTimeout == 0 {
		opts.VerifyTimeout = 3 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Service{opts: opts}
}

// Name is "docker".
func (s *Service) Name() string { return Name }

// Ports is dockerd's TLS port.
func (s *Service) Ports() []vm.Forward {
	return []vm.Forward{{Name: Name, GuestPort: GuestPort}}
}

// State is what Enable records in the machine's state.
type State struct {
	// Version, APIVersion and MinAPIVersion are the server's, from GET
	// /version over TLS.
	Version       string `json:"version"`
	APIVersion    string `json:"api_version"`
	MinAPIVersion string `json:"min_api_version,omitempty"`
	// GuestPort is dockerd's TLS port in the guest.
	GuestPort int `json:"guest_port"`
	// Endpoint is the host:port the check went through.
	Endpoint string `json:"endpoint"`
	// SANs are the names and addresses in the server certificate.
	SANs []string `json:"sans"`
	// Fingerprints (SHA-256 of the DER) of the certificates in use.
	CAFingerprint     string `json:"ca_sha256"`
	ServerFingerprint string `json:"server_sha256"`
	ClientFingerprint string `json:"client_sha256"`
}

// ReadState returns what the docker service recorded for m; ok is false
// when it was never enabled.
func ReadState(m *vm.Machine) (State, bool, error) {
	return services.ReadState[State](m, Name)
}

// Endpoint is the host and port the host reaches dockerd's TLS port at:
// the VM's own address in network mode, else the "docker" forward on
// 127.0.0.1.
func Endpoint(m *vm.Machine) (host string, port int, err error) {
	if m.Network == vm.NetworkModeLibvirt {
		if m.Address == "" {
			return "", 0, fmt.Errorf("machine %q is in network mode but has no address recorded; run \"devbundle up -m %s\" again", m.Name, m.Name)
		}
		return m.Address, GuestPort, nil
	}
	f, ok := m.Forward(Name)
	if !ok || f.HostPort == 0 {
		return "", 0, dberr.WithHint(
			fmt.Errorf("machine %q has no forwarded port for docker (guest port %d)", m.Name, GuestPort),
			fmt.Sprintf("halt the machine and bring it up with docker so the port is added: \"devbundle halt -m %s\" then \"devbundle up -m %s --services docker\"", m.Name, m.Name))
	}
	host = f.HostIP
	if host == "" {
		host = "127.0.0.1"
	}
	return host, f.HostPort, nil
}

// envComment heads the docker block of `env`.
var envComment = []string{
	"Set the following environment variables to enable access to the",
	"docker daemon running inside of the devbundle virtual machine:",
}

// Env returns DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY and
// DOCKER_API_VERSION from the machine's state alone. dir is the machine's
// docker folder (DOCKER_CERT_PATH). It refuses (exit 126) when the service
// was never enabled or when the address the host would use is not in the
// server certificate (the address changed since the last `up`).
func (s *Service) Env(m *vm.Machine, dir string) (services.EnvInfo, error) {
	st, ok, err := ReadState(m)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	if !ok || st.APIVersion == "" {
		return services.EnvInfo{}, dberr.WithHint(
			dberr.ServiceUnavailable("docker was never enabled on machine %q", m.Name),
			fmt.Sprintf("run \"devbundle up -m %s --services docker\"", m.Name))
	}
	host, port, err := Endpoint(m)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	if ip := net.ParseIP(host); ip != nil {
		host = ip.String()
	}
	if !slices.Contains(st.SANs, host) {
		return services.EnvInfo{}, dberr.WithHint(
			dberr.ServiceUnavailable("docker's certificate on machine %q is not valid for %s (it names %v)", m.Name, host, st.SANs),
			fmt.Sprintf("run \"devbundle up -m %s\" to remake it", m.Name))
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	return services.EnvInfo{
		Comment: slices.Clone(envComment),
		Vars: []envfmt.Var{
			{Name: "DOCKER_HOST", Value: "tcp://" + addr},
			{Name: "DOCKER_CERT_PATH", Value: dir},
			{Name: "DOCKER_TLS_VERIFY", Value: "1"},
			{Name: "DOCKER_API_VERSION", Value: st.APIVersion},
		},
		Probe: addr,
	}, nil
}
