package kubeapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/tlsutil"
)

func encodeData(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func decodeData(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}

// tlsConfig is the client configuration for e: its CA only, its client
// pair, and the name to check (ServerName or the host of Server).
func (e Endpoint) tlsConfig() (*tls.Config, error) {
	pool, err := e.caPool()
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(e.Server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("server %q is not an https URL", e.Server)
	}
	cfg := &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if e.ServerName != "" {
		cfg.ServerName = e.ServerName
	}
	if len(e.ClientCert) > 0 {
		pair, err := tls.X509KeyPair(e.ClientCert, e.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("load the client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Client is an HTTP client for one API server, never through a proxy.
type Client struct {
	e    Endpoint
	http *http.Client
}

// NewClient returns a client for e.
func NewClient(e Endpoint) (*Client, error) {
	cfg, err := e.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &Client{e: e, http: &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     cfg,
		DisableKeepAlives:   true,
		TLSHandshakeTimeout: 15 * time.Second,
		DialContext:         e.dialer(),
	}}}, nil
}

// Close releases the client's connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// StatusError is an answer with a status other than 200.
type StatusError struct {
	URL    string
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("GET %s: %d %s: %s", e.URL, e.Status, http.StatusText(e.Status), e.Body)
}

// attemptTimeout bounds one request.
const attemptTimeout = 15 * time.Second

// Get returns the body of GET path; a status other than 200 is a
// *StatusError.
func (c *Client) Get(ctx context.Context, path string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	u := strings.TrimRight(c.e.Server, "/") + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.e.Token != "" && len(c.e.ClientCert) == 0 {
		req.Header.Set("Authorization", "Bearer "+c.e.Token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{URL: u, Status: resp.StatusCode, Body: oneLine(string(body), 200)}
	}
	return body, nil
}

// GetJSON decodes GET path into v.
func (c *Client) GetJSON(ctx context.Context, path string, v any) error {
	body, err := c.Get(ctx, path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s%s: the answer is not JSON: %w", c.e.Server, path, err)
	}
	return nil
}

// Version is the part of GET /version devbundle records.
type Version struct {
	Major      string `json:"major"`
	Minor      string `json:"minor"`
	GitVersion string `json:"gitVersion"`
	Platform   string `json:"platform"`
}

// Version asks the server for GET /version (or another path answering
// the same shape, such as OpenShift 3's /version/openshift).
func (c *Client) Version(ctx context.Context, path string) (Version, error) {
	var v Version
	if err := c.GetJSON(ctx, path, &v); err != nil {
		return Version{}, err
	}
	if v.GitVersion == "" {
		return Version{}, fmt.Errorf("GET %s%s: the answer has no gitVersion", c.e.Server, path)
	}
	return v, nil
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// CertificateError is a TLS handshake that failed on a certificate:
// waiting longer does not help.
type CertificateError struct{ Err error }

func (e *CertificateError) Error() string { return e.Err.Error() }
func (e *CertificateError) Unwrap() error { return e.Err }

// preferredNames are the names tried, in order, when the server's
// certificate does not carry the host the client dials.
var preferredNames = []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "127.0.0.1"}

// ResolveServerName does one TLS handshake with e's server and returns
// e with ServerName set when the certificate does not carry the host of
// Server: one of its names that verifies, preferring localhost and
// kubernetes. The certificate chain is always verified against e's CA;
// a connection that fails before the handshake is returned as is (the
// caller retries), a certificate that no name makes valid as a
// *CertificateError.
func ResolveServerName(ctx context.Context, e Endpoint) (Endpoint, error) {
	e.ServerName = ""
	err := handshake(ctx, e)
	if err == nil {
		return e, nil
	}
	var herr x509.HostnameError
	if !errors.As(err, &herr) || herr.Certificate == nil {
		if tlsutil.IsCertificateError(err) {
			return e, &CertificateError{Err: err}
		}
		return e, err
	}
	cert := herr.Certificate
	var candidates []string
	for _, n := range preferredNames {
		if slices.Contains(cert.DNSNames, n) || slices.ContainsFunc(cert.IPAddresses, func(ip net.IP) bool { return ip.String() == n }) {
			candidates = append(candidates, n)
		}
	}
	candidates = append(candidates, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		candidates = append(candidates, ip.String())
	}
	if len(candidates) == 0 {
		return e, &CertificateError{Err: fmt.Errorf("the server certificate at %s names no host: %w", e.Server, err)}
	}
	// The first attempt stopped at the name; this one verifies the chain
	// and the chosen name in full.
	e.ServerName = candidates[0]
	if err := handshake(ctx, e); err != nil {
		if tlsutil.IsCertificateError(err) {
			return e, &CertificateError{Err: err}
		}
		return e, err
	}
	return e, nil
}

func handshake(ctx context.Context, e Endpoint) error {
	cfg, err := e.tlsConfig()
	if err != nil {
		return &CertificateError{Err: err}
	}
	u, _ := url.Parse(e.Server)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	raw, err := e.dialer()(ctx, "tcp", host)
	if err != nil {
		return err
	}
	conn := tls.Client(raw, cfg)
	defer func() { _ = conn.Close() }()
	return conn.HandshakeContext(ctx)
}

// WaitOptions say what WaitReady waits for.
type WaitOptions struct {
	// Paths are tried in order until one exists: "/readyz", then
	// "/healthz" for servers older than Kubernetes 1.16.
	Paths []string
	// Timeout bounds the whole wait.
	Timeout time.Duration
	// What names the server in messages ("kube-apiserver").
	What string
	// Hint says where to look when the wait fails.
	Hint string
	// Progress, when set, is called about every 15 s with what the wait
	// last saw.
	Progress func(elapsed time.Duration, last error)
}

// TimeoutError is a wait that ran out of time.
type TimeoutError struct {
	What    string
	URL     string
	Timeout time.Duration
	Last    error
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s did not become ready at %s within %s (last: %v)", e.What, e.URL, e.Timeout, e.Last)
}

func (e *TimeoutError) Unwrap() error { return e.Last }

// WaitReady waits until e's server answers 200 on its readiness path,
// resolving the certificate's name on the way, and returns e as resolved.
// Connection errors and non-200 answers are retried until the timeout; a
// certificate error ends the wait at once.
func WaitReady(ctx context.Context, e Endpoint, opts WaitOptions) (Endpoint, error) {
	if len(opts.Paths) == 0 {
		opts.Paths = []string{"/readyz", "/healthz"}
	}
	outer := ctx
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	start := time.Now()
	lastReport := start
	pause := 250 * time.Millisecond
	resolved := false
	pathIdx := 0
	var last error
	for {
		err := func() error {
			if !resolved {
				r, err := ResolveServerName(ctx, e)
				if err != nil {
					return err
				}
				e, resolved = r, true
			}
			c, err := NewClient(e)
			if err != nil {
				return &CertificateError{Err: err}
			}
			defer c.Close()
			_, err = c.Get(ctx, opts.Paths[pathIdx])
			var se *StatusError
			if errors.As(err, &se) && se.Status == http.StatusNotFound && pathIdx+1 < len(opts.Paths) {
				pathIdx++
				_, err = c.Get(ctx, opts.Paths[pathIdx])
			}
			if err != nil && tlsutil.IsCertificateError(err) {
				return &CertificateError{Err: err}
			}
			return err
		}()
		if err == nil {
			return e, nil
		}
		var ce *CertificateError
		if errors.As(err, &ce) {
			return e, fmt.Errorf("%s at %s: %w", opts.What, e.Server, err)
		}
		last = err
		if opts.Progress != nil && time.Since(lastReport) >= 15*time.Second {
			lastReport = time.Now()
			opts.Progress(time.Since(start).Round(time.Second), last)
		}
		select {
		case <-ctx.Done():
			if outer.Err() != nil {
				return e, fmt.Errorf("wait for %s at %s: %w", opts.What, e.Server, outer.Err())
			}
			return e, &TimeoutError{What: opts.What, URL: e.Server + opts.Paths[pathIdx], Timeout: opts.Timeout, Last: last}
		case <-time.After(pause):
		}
		pause = min(2*pause, 2*time.Second)
	}
}
