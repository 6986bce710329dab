package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/kubernetes/kubeapi"
	"github.com/devbundle/devbundle/vm"
)

// versionTimeout bounds the live version probe.
const versionTimeout = 20 * time.Second

// ServerVersion asks the API server in m for GET /version with the host's
// kubeconfig in dir, once, and returns its gitVersion without a vendor's
// suffix ("v1.28.3" for k3s' "v1.28.3+k3s1"). A server that does not
// answer gives an error of kind dberr.ErrServiceUnavailable (exit 126).
func (s *Service) ServerVersion(ctx context.Context, m *vm.Machine, dir string) (string, error) {
	hint := fmt.Sprintf("start it with \"devbundle up -m %s --services kubernetes\" (or \"devbundle service start kubernetes\"), or pass --cli-version VERSION", m.Name)
	e, err := kubeapi.Load(KubeconfigPath(dir))
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("ask kubernetes on machine %q for its version: %w", m.Name, err),
			fmt.Sprintf("run \"devbundle up -m %s --services kubernetes\" to write the kubeconfig again, or pass --cli-version VERSION", m.Name))
	}
	client, err := kubeapi.NewClient(e)
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("ask kubernetes on machine %q for its version: %w", m.Name, err), hint)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	v, err := client.Version(ctx, "/version")
	if err != nil {
		var se *kubeapi.StatusError
		if errors.As(err, &se) {
			return "", dberr.WithHint(dberr.ServiceUnavailable("kubernetes on machine %q refused the version request: %w", m.Name, err), hint)
		}
		return "", dberr.WithHint(dberr.ServiceUnavailable("kubernetes on machine %q does not answer at %s: %w", m.Name, e.Server, err), hint)
	}
	up := services.UpstreamVersion(v.GitVersion)
	if up == "" {
		return "", dberr.WithHint(dberr.ServiceUnavailable("kubernetes on machine %q reports version %q, which is not a release number", m.Name, v.GitVersion),
			"pass --cli-version VERSION")
	}
	return up, nil
}
