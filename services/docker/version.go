package docker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

var _ services.Versioner = (*Service)(nil)

// versionTimeout bounds the live version probe: one TLS request to a
// server that is up answers well within it, even under emulation.
const versionTimeout = 20 * time.Second

// apiClient is an HTTP client for dockerd's Engine API over mutual TLS,
// never through the user's proxy.
// dial, when set, opens the connections (through a remote libvirt host).
func apiClient(cfg *tls.Config, dial sshc.DialFunc) *http.Client {
	if dial == nil {
		dial = (&net.Dialer{Timeout: 10 * time.Second}).DialContext
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:             nil,
		TLSClientConfig:   cfg,
		DisableKeepAlives: true,
		DialContext:       dial,
	}}
}

// ServerVersion asks dockerd in m for GET /version over mutual TLS with
// the host's client certificate in dir (DOCKER_CERT_PATH), once, and
// returns its Version without the distribution's suffix ("20.10.24" for
// Debian's "20.10.24+dfsg1"). A dockerd that does not answer gives an
// error of kind dberr.ErrServiceUnavailable (exit 126).
func (s *Service) ServerVersion(ctx context.Context, m *vm.Machine, dir string) (string, error) {
	hint := fmt.Sprintf("start it with \"devbundle up -m %s --services docker\" (or \"devbundle service start docker\"), or pass --cli-version VERSION", m.Name)
	host, port, err := Endpoint(m)
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("%w", err), hint)
	}
	cfg, err := tlsFiles{dir: dir}.config(host)
	if err != nil {
		return "", dberr.WithHint(dberr.ServiceUnavailable("ask docker on machine %q for its version: %w", m.Name, err),
			fmt.Sprintf("run \"devbundle up -m %s --services docker\" to remake the certificates, or pass --cli-version VERSION", m.Name))
	}
	client := apiClient(cfg, nil)
	defer client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	url := "https://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/version"
	v, err := getVersion(ctx, client, url)
	if err != nil {
		var ce *certificateError
		if errors.As(err, &ce) {
			return "", dberr.WithHint(dberr.ServiceUnavailable("docker on machine %q refused devbundle's certificate at %s: %w", m.Name, url, err),
				fmt.Sprintf("run \"devbundle up -m %s\" to remake the certificates, or pass --cli-version VERSION", m.Name))
		}
		return "", dberr.WithHint(dberr.ServiceUnavailable("docker on machine %q does not answer at %s: %w", m.Name, url, err), hint)
	}
	up := services.UpstreamVersion(v.Version)
	if up == "" {
		return "", dberr.WithHint(dberr.ServiceUnavailable("docker on machine %q reports version %q, which is not a release number", m.Name, v.Version),
			"pass --cli-version VERSION")
	}
	return up, nil
}
