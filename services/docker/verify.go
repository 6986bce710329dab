package docker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/internal/tlsutil"
	"github.com/devbundle/devbundle/vm/sshc"
)

// tlsFiles are the client's files in DOCKER_CERT_PATH: the check uses
// exactly what the docker CLI will.
type tlsFiles struct{ dir string }

// config is the client TLS configuration for serverName (an IP address or
// a host name, checked against the server certificate's SANs).
func (f tlsFiles) config(serverName string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(filepath.Join(f.dir, ClientCertFile), filepath.Join(f.dir, ClientKeyFile))
	if err != nil {
		return nil, fmt.Errorf("load docker's client certificate: %w", err)
	}
	caPEM, err := os.ReadFile(filepath.Join(f.dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("load docker's CA: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("load docker's CA: %q holds no certificate", filepath.Join(f.dir, CAFile))
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		RootCAs:      roots,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// versionInfo is the part of GET /version devbundle records.
type versionInfo struct {
	Version       string `json:"Version"`
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion"`
	endpoint      string
}

// certificateError is a TLS handshake that failed on a certificate (ours
// or the server's): waiting longer does not help.
type certificateError struct{ err error }

func (e *certificateError) Error() string { return e.err.Error() }
func (e *certificateError) Unwrap() error { return e.err }

// attemptTimeout bounds one request of the check.
const attemptTimeout = 15 * time.Second

// verifyAPI asks dockerd for GET /version over mutual TLS at host:port,
// retrying while it (re)starts, until timeout. A certificate failure ends
// the wait at once.
func verifyAPI(ctx context.Context, files tlsFiles, host string, port int, timeout time.Duration, dial sshc.DialFunc) (versionInfo, error) {
	cfg, err := files.config(host)
	if err != nil {
		return versionInfo{}, err
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	url := "https://" + addr + "/version"
	client := apiClient(cfg, dial)
	defer client.CloseIdleConnections()

	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pause := 250 * time.Millisecond
	var last error
	for attempt := 1; ; attempt++ {
		v, err := getVersion(ctx, client, url)
		if err == nil {
			v.endpoint = addr
			return v, nil
		}
		var ce *certificateError
		if errors.As(err, &ce) {
			return versionInfo{}, dberr.WithHint(
				fmt.Errorf("docker's TLS check at %s failed on a certificate: %w", url, err),
				"run \"devbundle up\" again; if it persists, remove the machine's docker folder ("+files.dir+") and run \"devbundle up\"")
		}
		last = err
		select {
		case <-ctx.Done():
			if outer.Err() == nil {
				return versionInfo{}, dberr.WithHint(
					fmt.Errorf("dockerd did not answer at %s within %s (%d attempts; last: %w)", url, timeout, attempt, last),
					`see dockerd's log: "devbundle ssh -- journalctl -u docker.service"`)
			}
			return versionInfo{}, fmt.Errorf("wait for dockerd at %s: %w", url, outer.Err())
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func getVersion(ctx context.Context, client *http.Client, url string) (versionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return versionInfo{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		if tlsutil.IsCertificateError(err) {
			return versionInfo{}, &certificateError{err: err}
		}
		return versionInfo{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return versionInfo{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return versionInfo{}, fmt.Errorf("GET %s: %s: %s", url, resp.Status, tail(string(body), 200))
	}
	var v versionInfo
	if err := json.Unmarshal(body, &v); err != nil {
		return versionInfo{}, fmt.Errorf("GET %s: the answer is not docker's version JSON: %w", url, err)
	}
	if v.APIVersion == "" || v.Version == "" {
		return versionInfo{}, fmt.Errorf("GET %s: the answer has no Version or ApiVersion: %s", url, tail(string(body), 200))
	}
	return v, nil
}
