package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbundle/devbundle/services/kubernetes/kubetest"
	"github.com/devbundle/devbundle/vm/sshc"
)

// fakeGuest stands in for a logged-in machine in unit tests of the
// service's own logic: it answers the probe from its fields, records
// every command, keeps the order units were started and stopped in, and
// runs a fake API server (a real TLS server on 127.0.0.1 with a cluster
// CA) that answers only while the flavour's main unit is active.
type fakeGuest struct {
	t *testing.T

	mu        sync.Mutex
	units     map[string]string // unit -> ActiveState; absent = not-found
	kubeadm   bool
	port      string
	files     map[string][]byte // guest files
	openssl   bool
	startFail string // a unit whose start fails
	// pkiOnStart: admin.conf appears only once the control plane starts,
	// as the test box's PKI unit makes it.
	pkiOnStart bool
	main       string
	pki        *kubetest.PKI
	apiPort    int
	version    string
	cmds       []string
	started    []string
	stopped    []string
	restarted  []string
	uploads    []string
	readyzHits int
}

func newFakeGuest(t *testing.T, names ...string) *fakeGuest {
	if len(names) == 0 {
		names = []string{"127.0.0.1", "localhost", "10.0.2.15", "kubernetes"}
	}
	g := &fakeGuest{
		t: t, files: map[string][]byte{}, version: "v1.33.13", main: "kube-apiserver",
		units: map[string]string{
			"etcd": "inactive", "containerd": "active", "docker": "active",
			"kube-apiserver": "inactive", "kube-controller-manager": "inactive",
			"kube-scheduler": "inactive", "kubelet": "inactive",
		},
	}
	g.pki = kubetest.NewPKI(t, names...)
	g.files[adminConf] = g.pki.AdminKubeconfig("https://127.0.0.1:6443")
	g.apiPort = g.pki.Serve(t, http.HandlerFunc(g.serve))
	return g
}

func (g *fakeGuest) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	up := g.units[g.main] == "active"
	if r.URL.Path == "/readyz" {
		g.readyzHits++
	}
	version := g.version
	g.mu.Unlock()
	if !up {
		// What a forward to a closed guest port looks like: the
		// connection just ends.
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch r.URL.Path {
	case "/readyz":
		_, _ = io.WriteString(w, "ok")
	case "/version":
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"major":"1","minor":"33","gitVersion":%q,"platform":"linux/amd64"}`, version)
	default:
		http.NotFound(w, r)
	}
}

func (g *fakeGuest) probeOutput() string {
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	kv("systemctl", "/usr/bin/systemctl")
	for _, u := range probedUnits {
		if st, ok := g.units[u]; ok {
			fmt.Fprintf(&b, "unit.%s.LoadState=loaded\nunit.%s.ActiveState=%s\nunit.%s.UnitFileState=disabled\n", u, u, st, u)
		} else {
			fmt.Fprintf(&b, "unit.%s.LoadState=not-found\nunit.%s.ActiveState=inactive\nunit.%s.UnitFileState=\n", u, u, u)
		}
	}
	if g.kubeadm {
		kv("kubeadm", "1")
	}
	kv("port", g.port)
	for _, f := range []string{adminConf, k3sYAML, generatedConf} {
		if data, ok := g.files[f]; ok {
			kv("file:"+f, base64.StdEncoding.EncodeToString(data))
		}
	}
	for _, p := range caPairs {
		for _, f := range p {
			if _, ok := g.files[f]; ok {
				kv("exists:"+f, "1")
			}
		}
	}
	if g.openssl {
		kv("openssl", "/usr/bin/openssl")
	} else {
		kv("openssl", "")
	}
	kv("crictl", "")
	for _, u := range proxyUnits {
		f := "/etc/systemd/system/" + u + ".service.d/" + proxyDropIn
		if data, ok := g.files[f]; ok {
			sum := sha256.Sum256(data)
			kv("sha256:"+f, hex.EncodeToString(sum[:]))
		}
	}
	kv("end", "1")
	return b.String()
}

// args are the words after "devbundle" of a RunRoot command line.
func args(cmd string) []string {
	_, rest, ok := strings.Cut(cmd, "' devbundle ")
	if !ok {
		return nil
	}
	var out []string
	for _, w := range strings.Fields(rest) {
		out = append(out, strings.Trim(w, "'"))
	}
	return out
}

func (g *fakeGuest) Run(ctx context.Context, cmd string, opts sshc.RunOptions) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds = append(g.cmds, cmd)
	out := func(s string) {
		if opts.Stdout != nil {
			_, _ = io.WriteString(opts.Stdout, s)
		}
	}
	errOut := func(s string) {
		if opts.Stderr != nil {
			_, _ = io.WriteString(opts.Stderr, s)
		}
	}
	switch {
	case strings.Contains(cmd, "devbundle-kube-probe"):
		out(g.probeOutput())
	case strings.Contains(cmd, "systemctl start \"$u.service\""):
		for _, u := range args(cmd) {
			if u == g.startFail {
				out("failed=" + u + "\n")
				errOut("Job for " + u + ".service failed.\n")
				return 2, nil
			}
			g.started = append(g.started, u)
			g.units[u] = "active"
			if g.pkiOnStart {
				g.files[adminConf] = g.pki.AdminKubeconfig("https://127.0.0.1:6443")
			}
		}
	case strings.Contains(cmd, "systemctl restart \"$u.service\""):
		for _, u := range args(cmd) {
			g.restarted = append(g.restarted, u)
			g.units[u] = "active"
		}
	case strings.Contains(cmd, "systemctl stop \"$u.service\""):
		a := args(cmd)
		for _, u := range a[1:] {
			g.stopped = append(g.stopped, u)
			g.units[u] = "inactive"
		}
	case strings.Contains(cmd, "journalctl"):
		out("E0101 etcd: connection refused\n")
	case strings.Contains(cmd, "openssl req"):
		if !g.openssl {
			errOut("openssl: not found\n")
			return 127, nil
		}
		// What the script makes: an admin kubeconfig signed by the CA.
		cert, key := g.pki.ClientCert(g.t, time.Now().Add(365*24*time.Hour))
		g.files[generatedConf] = g.pki.KubeconfigFor("https://127.0.0.1:6443", cert, key)
	case strings.Contains(cmd, `if [ -f "$f" ]; then printf`):
		for _, f := range args(cmd) {
			if data, ok := g.files[f]; ok {
				out(f + "=" + base64.StdEncoding.EncodeToString(data) + "\n")
			}
		}
	case strings.Contains(cmd, "install -d -m 0755"), strings.Contains(cmd, "daemon-reload"):
	case strings.Contains(cmd, "rm -f \"$1\""):
		delete(g.files, args(cmd)[0])
	default:
		g.t.Errorf("fake guest: unexpected command %q", cmd)
		return 127, nil
	}
	return 0, nil
}

func (g *fakeGuest) Output(ctx context.Context, cmd string) ([]byte, error) {
	g.t.Errorf("fake guest: unexpected Output %q", cmd)
	return nil, &sshc.CommandError{Cmd: cmd, ExitCode: 127}
}

func (g *fakeGuest) Upload(ctx context.Context, path string, data []byte, mode os.FileMode, opts sshc.UploadOptions) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !opts.Sudo {
		g.t.Errorf("upload of %s without sudo", path)
	}
	g.uploads = append(g.uploads, path)
	g.files[path] = slices.Clone(data)
	return nil
}

func (g *fakeGuest) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	g.t.Errorf("fake guest: unexpected DialTCP %q", addr)
	return nil, errors.New("no dialing in the fake")
}

func (g *fakeGuest) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds, g.started, g.stopped, g.restarted, g.uploads, g.readyzHits = nil, nil, nil, nil, nil, 0
}

func (g *fakeGuest) set(f func(g *fakeGuest)) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f(g)
}
