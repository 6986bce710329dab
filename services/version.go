package services

import (
	"context"
	"fmt"
	"regexp"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/vm"
)

// Versioner is a Service that can ask its running server for its version,
// so that `install-cli` fetches the matching client. Services implement it
// when they can; callers check with a type assertion.
type Versioner interface {
	// ServerVersion asks the server in m for its version, live (not from
	// the state recorded at `up`), and returns the upstream version without
	// a distribution's suffix: "20.10.24" for docker's "20.10.24+dfsg1",
	// "v1.28.3" for Kubernetes' "v1.28.3+k3s1". dir is the service's folder
	// on the host (see Dir). A server that does not answer gives an error of
	// kind dberr.ErrServiceUnavailable.
	ServerVersion(ctx context.Context, m *vm.Machine, dir string) (string, error)
}

// ServerVersion asks the named service in machine m (whose folder is
// machineDir) for its server's version. A service that is unknown, not
// enabled on m, unable to report its version or not answering gives an
// error of kind dberr.ErrServiceUnavailable (exit 126) whose hint names
// --cli-version as the way around it.
func ServerVersion(ctx context.Context, reg *Registry, m *vm.Machine, machineDir, name string) (string, error) {
	svc, err := reg.Get(name)
	if err != nil {
		return "", err
	}
	if _, ok := m.Services[name]; !ok {
		return "", dberr.WithHint(dberr.ServiceUnavailable("service %q is not enabled on machine %q, so its version is unknown", name, m.Name),
			fmt.Sprintf("run \"devbundle up -m %s --services %s\", or pass --cli-version VERSION", m.Name, name))
	}
	v, ok := svc.(Versioner)
	if !ok {
		return "", dberr.WithHint(dberr.ServiceUnavailable("service %q cannot report its server version yet", name),
			"pass --cli-version VERSION")
	}
	ver, err := v.ServerVersion(ctx, m, Dir(machineDir, name))
	if err != nil && m.Via != nil {
		// The forwards bind the remote libvirt host's loopback.
		return "", dberr.WithHint(err, TunnelHint(m)+", or pass --cli-version VERSION")
	}
	return ver, err
}

// upstreamVersion is a release number, an optional pre-release tag, and
// whatever follows (a distribution's or vendor's suffix).
var upstreamVersion = regexp.MustCompile(`^(v?[0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-(?:alpha|beta|rc)(?:\.?[0-9]+)?)?)([-+~].*)?$`)

// UpstreamVersion drops a distribution's or vendor's suffix from a server
// version: "20.10.24+dfsg1" -> "20.10.24", "20.10.5~ds1" -> "20.10.5",
// "17.03.0-ce" -> "17.03.0", "v1.28.3+k3s1" -> "v1.28.3",
// "v1.27.6-gke.1248000" -> "v1.27.6". Pre-release tags stay
// ("v1.30.0-rc.1"). A leading "v" is kept as given. It returns "" for a
// string that does not start with a version number.
func UpstreamVersion(v string) string {
	m := upstreamVersion.FindStringSubmatch(v)
	if m == nil {
		return ""
	}
	return m[1]
}
