package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
)

// Status is running when the control plane's main unit is active
// (kube-apiserver, the kubelet of a kubeadm box, k3s), unavailable when
// the box has no Kubernetes, else stopped.
func (s *Service) Status(ctx context.Context, sc services.Context) (services.Status, error) {
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return "", err
	}
	f := p.flavour()
	switch {
	case !p.Systemctl || f == "":
		return services.StatusUnavailable, nil
	case p.Units[mainUnit(f)].active():
		return services.StatusRunning, nil
	}
	return services.StatusStopped, nil
}

// stopScript stops each unit given, in order. On a kubeadm box, stopping
// the kubelet leaves its static pods running: with crictl at hand ($1 is
// "pods"), their pods are stopped too.
const stopScript = `pods=$1; shift
for u in "$@"; do systemctl stop "$u.service" || exit 2; done
if [ "$pods" = pods ] && command -v crictl >/dev/null 2>&1; then
	ids=$(crictl pods -q 2>/dev/null)
	if [ -n "$ids" ]; then crictl stopp $ids >/dev/null || exit 3; fi
fi
exit 0`

// Stop stops the control plane in reverse order (kube-proxy and the
// kubelet first, etcd last). The container runtime keeps running: docker
// may share it.
func (s *Service) Stop(ctx context.Context, sc services.Context) error {
	p, err := readProbe(ctx, sc.Guest)
	if err != nil {
		return err
	}
	f, err := requireFlavour(p, sc.Machine)
	if err != nil {
		return err
	}
	units := p.stopOrder(f)
	pods := "no"
	if f == FlavourKubeadm {
		pods = "pods"
	}
	logger(sc)("kubernetes: stopping %s", strings.Join(units, ", "))
	code, _, stderr, err := services.RunRoot(ctx, sc.Guest, stopScript, append([]string{pods}, units...)...)
	if err != nil {
		return fmt.Errorf("stop kubernetes: %w", err)
	}
	if code != 0 {
		msg, _ := services.SudoHint(stderr)
		return dberr.WithHint(fmt.Errorf("stop kubernetes (%s): exit status %d: %s", strings.Join(units, ", "), code, services.Tail(msg, 400)),
			"see \"devbundle ssh -- sudo systemctl status "+mainUnit(f)+"\"")
	}
	return nil
}

func sha256Hex(data []byte) string {
	if data == nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func decodeB64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.TrimSpace(s))
}
