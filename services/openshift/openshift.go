// Package openshift is devbundle's openshift service, for boxes that carry
// OpenShift: an OKD/Origin 3.x all-in-one master (an openshift.service or
// origin-master units, or the "origin" container `oc cluster up` leaves)
// serving on 8443, or MicroShift's systemd unit serving on 6443.
//
// Enable starts what is stopped, waits for the API's health from the host,
// takes the admin kubeconfig the box carries, writes the host's copy (0600,
// CA embedded, never skipping verification), and records the version
// (3.x: GET /version/openshift; OpenShift 4: the ClusterVersion object's
// status.desired.version; MicroShift: the kube-public/microshift-version
// ConfigMap, as MicroShift runs no cluster-version operator) and the
// registry route's host.
//
// No real OpenShift runs on devbundle's test machines: this package is
// tested against hand-written fixtures shaped from OpenShift's documented
// API (see the tests named "Fixture"), not against a real server.
package openshift

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/devbundle/devbundle/envfmt"
	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
)

// Name is the service's name.
const Name = "openshift"

// Guest ports and the forwards that carry them.
const (
	// MasterPort is OpenShift 3's API and console port.
	MasterPort = 8443
	// MicroShiftPort is MicroShift's API port.
	MicroShiftPort = 6443
	// MicroShiftForward names the forward of MicroShiftPort.
	MicroShiftForward = Name + "-microshift"
)

// KubeconfigFile is the admin kubeconfig's name in the service's folder.
const KubeconfigFile = "kubeconfig"

// Flavour is how a box runs OpenShift.
type Flavour string

// The flavours devbundle drives.
const (
	// FlavourOrigin is an OpenShift/OKD 3.x all-in-one master.
	FlavourOrigin Flavour = "origin"
	// FlavourMicroShift is MicroShift's systemd unit.
	FlavourMicroShift Flavour = "microshift"
)

// Options change how the service works; the zero value is the default.
type Options struct {
	// ReadyTimeout bounds the wait for the API's health after a start
	// (default 10 minutes).
	ReadyTimeout time.Duration
}

// Service is the openshift service.
type Service struct{ opts Options }

var (
	_ services.Service   = (*Service)(nil)
	_ services.Versioner = (*Service)(nil)
)

// New returns the openshift service.
func New(opts Options) *Service {
	if opts.ReadyTimeout == 0 {
		opts.ReadyTimeout = 10 * time.Minute
	}
	return &Service{opts: opts}
}

// Name is "openshift".
func (s *Service) Name() string { return Name }

// Ports are both API ports: which one a box uses is known only once it
// runs.
func (s *Service) Ports() []vm.Forward {
	return []vm.Forward{{Name: Name, GuestPort: MasterPort}, {Name: MicroShiftForward, GuestPort: MicroShiftPort}}
}

// State is what Enable records.
type State struct {
	Flavour Flavour `json:"flavour"`
	// Version is OpenShift's ("v3.11.0+0cbc58b", "4.14.3").
	Version string `json:"version"`
	// VersionSource says where Version came from (an API path).
	VersionSource string `json:"version_source"`
	// KubernetesVersion is the gitVersion of GET /version.
	KubernetesVersion string `json:"kubernetes_version"`
	// Endpoint is the host:port of the API as the host reaches it.
	Endpoint      string `json:"endpoint"`
	GuestPort     int    `json:"guest_port"`
	TLSServerName string `json:"tls_server_name,omitempty"`
	CAFingerprint string `json:"ca_sha256"`
	// Registry is the host of the docker-registry route, "" without one.
	Registry string `json:"registry,omitempty"`
	// Console is true when the master serves the web console (3.x).
	Console bool `json:"console"`
}

// ReadState returns what the service recorded for m.
func ReadState(m *vm.Machine) (State, bool, error) {
	return services.ReadState[State](m, Name)
}

// guestPort is the API port of flavour f.
func guestPort(f Flavour) int {
	if f == FlavourMicroShift {
		return MicroShiftPort
	}
	return MasterPort
}

// Endpoint is where the host reaches flavour f's API in m.
func Endpoint(m *vm.Machine, f Flavour) (host string, port int, err error) {
	if f == FlavourMicroShift {
		return services.ForwardEndpoint(m, MicroShiftForward, MicroShiftPort)
	}
	return services.ForwardEndpoint(m, Name, MasterPort)
}

// KubeconfigPath is the admin kubeconfig in the service's folder dir.
func KubeconfigPath(dir string) string { return filepath.Join(dir, KubeconfigFile) }

// Env returns OPENSHIFT_URL, OPENSHIFT_WEB_CONSOLE and DOCKER_REGISTRY
// (3.x), or OPENSHIFT_URL and KUBECONFIG (MicroShift, which has neither a
// console, nor a registry, nor `oc login`), from the machine's state
// alone.
func (s *Service) Env(m *vm.Machine, dir string) (services.EnvInfo, error) {
	st, ok, err := ReadState(m)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	if !ok || st.Version == "" {
		return services.EnvInfo{}, dberr.WithHint(dberr.ServiceUnavailable("openshift was never enabled on machine %q", m.Name),
			fmt.Sprintf("run \"devbundle up -m %s --services openshift\"", m.Name))
	}
	host, port, err := Endpoint(m, st.Flavour)
	if err != nil {
		return services.EnvInfo{}, dberr.ServiceUnavailable("%w", err)
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if addr != st.Endpoint {
		return services.EnvInfo{}, dberr.WithHint(
			dberr.ServiceUnavailable("openshift on machine %q was set up at %s, but its API is now at %s", m.Name, st.Endpoint, addr),
			fmt.Sprintf("run \"devbundle up -m %s\" to set it up again", m.Name))
	}
	url := "https://" + addr
	info := services.EnvInfo{Probe: addr}
	if st.Flavour == FlavourMicroShift {
		path := KubeconfigPath(dir)
		if _, err := os.Stat(path); err != nil {
			return services.EnvInfo{}, dberr.WithHint(dberr.ServiceUnavailable("the kubeconfig of machine %q is missing: %w", m.Name, err),
				fmt.Sprintf("run \"devbundle up -m %s\" to write it again", m.Name))
		}
		info.Comment = []string{
			"MicroShift " + st.Version + " runs inside of the devbundle virtual machine.",
			"It has no web console, no internal registry and no oc login: oc and",
			"kubectl use the admin kubeconfig below.",
		}
		info.Vars = []envfmt.Var{{Name: "OPENSHIFT_URL", Value: url}, {Name: "KUBECONFIG", Value: path}}
		return info, nil
	}
	console := url + "/console"
	info.Comment = []string{
		"You can access the OpenShift console on: " + console,
		"To use OpenShift CLI, run: oc login " + url,
	}
	info.Vars = []envfmt.Var{{Name: "OPENSHIFT_URL", Value: url}, {Name: "OPENSHIFT_WEB_CONSOLE", Value: console}}
	if st.Registry != "" {
		info.Vars = append(info.Vars, envfmt.Var{Name: "DOCKER_REGISTRY", Value: st.Registry})
	} else {
		info.Comment = append(info.Comment, "(no docker-registry route: DOCKER_REGISTRY is not set)")
	}
	return info, nil
}
