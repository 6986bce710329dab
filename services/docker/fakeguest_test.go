package docker

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
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

	"github.com/devbundle/devbundle/vm/sshc"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// fakeGuest stands in for a logged-in machine in unit tests of Enable's
// own logic: it answers the probe from its fields, keeps uploaded files,
// records every command, and runs a fake dockerd (a real TLS server on
// 127.0.0.1) that, like the real one, reads the certificate files in the
// guest only when it (re)starts.
type fakeGuest struct {
	t *testing.T

	mu            sync.Mutex
	hostname      string
	user          string
	groups        []string
	dockerd       string
	ostree        bool
	pm            string
	apparmor      bool
	load, active  string
	unitFileState string
	unit          string
	daemonJSON    string
	installExit   int // exit status of the package manager, 0 = installs
	restartExit   int
	files         map[string]fakeFile
	cmds          []string
	uploads       []string
	restarts      int
	starts        int

	// dockerd's TLS configuration as of its last start; nil when stopped.
	served *tls.Config
}

type fakeFile struct {
	data []byte
	mode os.FileMode
}

// newFakeGuest returns a guest with docker installed but never configured
// by devbundle, and its fake dockerd's port on 127.0.0.1.
func newFakeGuest(t *testing.T) (*fakeGuest, int) {
	g, ports, err := newFakeGuestAt(t, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return g, ports[0]
}

// newFakeGuestAt is newFakeGuest with dockerd listening on the given
// addresses.
func newFakeGuestAt(t *testing.T, addrs ...string) (*fakeGuest, []int, error) {
	g := &fakeGuest{
		t: t, hostname: "devbox", user: "vagrant", groups: []string{"vagrant"},
		dockerd: "/usr/sbin/dockerd", pm: "apt-get", load: "loaded", active: "active",
		unitFileState: "enabled", unit: debianUnit, files: map[string]fakeFile{},
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/version" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"Version":"20.10.24+dfsg1","ApiVersion":"1.41","MinAPIVersion":"1.12","Os":"linux"}`)
	})}
	t.Cleanup(func() { _ = srv.Close() })
	cfg := &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.served == nil {
			return nil, errors.New("dockerd is not running")
		}
		return g.served, nil
	}}
	var ports []int
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		go func() { _ = srv.Serve(tls.NewListener(ln, cfg)) }()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return g, ports, nil
}

// closedPort is a port on 127.0.0.1 nothing listens on (a moment ago).
func closedPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// startDockerd loads the certificate files as dockerd would at start. A
// guest without devbundle's files serves nothing over TLS.
func (g *fakeGuest) startDockerdLocked() {
	ca, okCA := g.files[GuestCA]
	cert, okCert := g.files[GuestCert]
	key, okKey := g.files[GuestKey]
	if !okCA || !okCert || !okKey {
		g.served = nil
		return
	}
	pair, err := tls.X509KeyPair(cert.data, key.data)
	if err != nil {
		g.t.Errorf("fake dockerd: the server pair in the guest does not load: %v", err)
		g.served = nil
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.data) {
		g.t.Errorf("fake dockerd: the CA in the guest does not load")
	}
	g.served = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
}

func (g *fakeGuest) probeOutput() string {
	var b strings.Builder
	kv := func(k, v string) { fmt.Fprintf(&b, "%s=%s\n", k, v) }
	kv("hostname", g.hostname)
	kv("user", g.user)
	kv("groups", strings.Join(g.groups, " "))
	kv("systemctl", "/usr/bin/systemctl")
	kv("dockerd", g.dockerd)
	if g.ostree {
		kv("ostree", "1")
	} else {
		kv("ostree", "0")
	}
	if g.pm != "" {
		kv("pm", g.pm)
	}
	if g.apparmor {
		kv("apparmor", "Y")
	} else {
		kv("apparmor", "N")
	}
	kv("LoadState", g.load)
	kv("ActiveState", g.active)
	kv("UnitFileState", g.unitFileState)
	unit := ""
	if g.load != "not-found" {
		unit = g.unit
		if f, ok := g.files[DropInPath]; ok {
			unit += "\n# " + DropInPath + "\n" + string(f.data)
		}
	}
	kv("unit", b64(unit))
	kv("daemonjson", b64(g.daemonJSON))
	if _, ok := g.files[restartMarker]; ok {
		kv("restartpending", "1")
	}
	for _, p := range guestFiles {
		if f, ok := g.files[p]; ok {
			sum := sha256.Sum256(f.data)
			kv("sha256:"+p, hex.EncodeToString(sum[:]))
		}
	}
	kv("end", "1")
	return b.String()
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
	case strings.Contains(cmd, "devbundle-probe"):
		out(g.probeOutput())
	case strings.Contains(cmd, "apt-get") || strings.Contains(cmd, "dnf -y") || strings.Contains(cmd, "yum -y"):
		if g.installExit != 0 {
			errOut("E: Unable to locate package docker.io\n")
			return g.installExit, nil
		}
		g.dockerd, g.load, g.active, g.unitFileState = "/usr/sbin/dockerd", "loaded", "active", "enabled"
		g.groups = slices.DeleteFunc(g.groups, func(s string) bool { return s == "docker" })
	case strings.Contains(cmd, "install -d -m 0700"):
		g.files[restartMarker] = fakeFile{}
	case strings.Contains(cmd, "systemctl restart docker.service"):
		if g.restartExit != 0 {
			errOut("Job for docker.service failed.\n")
			return g.restartExit, nil
		}
		g.restarts++
		if strings.Contains(cmd, "systemctl enable") && g.unitFileState == "disabled" {
			g.unitFileState = "enabled"
		}
		g.active = "active"
		g.startDockerdLocked()
		delete(g.files, restartMarker)
	case strings.Contains(cmd, "systemctl start docker.service"):
		g.starts++
		g.active = "active"
		g.startDockerdLocked()
	case strings.Contains(cmd, "journalctl"):
		out("level=error msg=\"failed to load listeners\"\n")
	case strings.Contains(cmd, "usermod -aG docker"):
		g.groups = append(g.groups, "docker")
	case strings.Contains(cmd, "systemctl stop $units"):
		g.active = "inactive"
		g.served = nil
	default:
		g.t.Errorf("fake guest: unexpected command %q", cmd)
		return 127, nil
	}
	return 0, nil
}

func (g *fakeGuest) Output(ctx context.Context, cmd string) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds = append(g.cmds, cmd)
	if cmd == "systemctl show -p LoadState -p ActiveState docker.service" {
		return []byte(fmt.Sprintf("LoadState=%s\nActiveState=%s\n", g.load, g.active)), nil
	}
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
	g.files[path] = fakeFile{data: slices.Clone(data), mode: mode}
	return nil
}

func (g *fakeGuest) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	g.t.Errorf("fake guest: unexpected DialTCP %q", addr)
	return nil, errors.New("no dialing in the fake")
}

// reset forgets the recorded commands and uploads.
func (g *fakeGuest) reset() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmds, g.uploads, g.restarts, g.starts = nil, nil, 0, 0
}

func (g *fakeGuest) count(substr string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, c := range g.cmds {
		if strings.Contains(c, substr) {
			n++
		}
	}
	return n
}
