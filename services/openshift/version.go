package openshift

import (
	"context"
	"fmt"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/kubernetes/kubeapi"
	"github.com/devbundle/devbundle/vm"
)

// ServerVersion asks OpenShift in m for its version with the host's admin
// kubeconfig in dir (the version oc is released under: "v3.11.0",
// "4.14.3"). A server that does not answer gives an error of kind
// dberr.ErrServiceUnavailable (exit 126).
func (s *Service) ServerVersion(ctx context.Context, m *vm.Machine, dir string) (string, error) {
	hint := fmt.Sprintf("start it with \"devbundle up -m %s --services openshift\", or pass --cli-version VERSION", m.Name)
	e, err := kubeapi.Load(KubeconfigPath(dir))
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("ask openshift on machine %q for its version: %w", m.Name, err), hint)
	}
	client, err := kubeapi.NewClient(e)
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("ask openshift on machine %q for its version: %w", m.Name, err), hint)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, _, err := openshiftVersion(ctx, client)
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("openshift on machine %q: %w", m.Name, err), hint)
	}
	up := services.UpstreamVersion(v)
	if up == "" {
		return "", dberr.WithHint(dberr.ServiceUnavailable("openshift on machine %q reports version %q, which is not a release number", m.Name, v),
			"pass --cli-version VERSION")
	}
	return up, nil
}
