//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbundle/devbundle/services/docker"
	"github.com/devbundle/devbundle/tests/testbox"
	"github.com/devbundle/devbundle/vm"
)

const (
	dockerMachine  = "e2e-docker"
	installMachine = "e2e-docker-install"
	// envNoDockerDir names the folder of a test box built without docker
	// (tests/box/cached.sh --no-docker) for the install test.
	envNoDockerDir = "DEVBUNDLE_TESTBOX_NODOCKER_DIR"
)

// TestDockerOverTLS drives the docker service through the devbundle binary
// on real libvirt with the test box, and the machine's real docker CLI
// against the real dockerd in the VM: `up --services docker`, `env` eval'd
// in bash, `docker version` and `docker run`; plain TCP and clients
// without this machine's certificate refused; a second `up` that does not
// restart dockerd; service stop/start/restart; halt and up with the
// certificates still valid.
func TestDockerOverTLS(t *testing.T) {
	boxDir := testbox.Dir(t)
	testbox.Connect(t) // libvirtd must answer, or the tier is skipped/failed
	cliPath := dockerCLI(t)
	c := newCLI(t, boxDir)
	t.Cleanup(func() { c.run(5*time.Minute, "-m", dockerMachine, "destroy", "--force") })
	m := []string{"-m", dockerMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.BoxName)
	upArgs := append(m, "up", "--box", testbox.BoxName, "--memory", "1024", "--services", "docker")
	c.must(15*time.Minute, upArgs...)

	// What up recorded, and the host's certificate folder.
	mach, st := dockerState(t, c, dockerMachine)
	if st.APIVersion == "" || st.Version == "" || st.GuestPort != 2376 {
		t.Fatalf("docker state after up: %+v", st)
	}
	certDir := filepath.Join(c.home, "data", "machines", dockerMachine, "docker")
	checkCertFolder(t, certDir)
	host, port, err := docker.Endpoint(mach)
	if err != nil {
		t.Fatal(err)
	}
	endpoint := host + ":" + strconv.Itoa(port)
	if st.Endpoint != endpoint {
		t.Errorf("state endpoint %q, forward %q", st.Endpoint, endpoint)
	}

	// The box makes devbundle/hello when dockerd first runs; wait for it.
	c.must(5*time.Minute, append(m, "ssh", "--", "sudo", "systemctl", "start", "devbundle-hello.service")...)

	// The user's path: eval the env output in bash, then the docker CLI.
	r := c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+dockerMachine+` env docker --shell bash)" || exit 99
printf 'HOST=%s\nCERT=%s\nVERIFY=%s\nAPI=%s\n' "$DOCKER_HOST" "$DOCKER_CERT_PATH" "$DOCKER_TLS_VERIFY" "$DOCKER_API_VERSION"
docker version --format 'SERVER={{.Server.Version}} {{.Server.APIVersion}}' || exit 98
docker run --rm devbundle/hello || exit 97`)
	if r.code != 0 {
		t.Fatalf("docker through env: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"HOST=tcp://" + endpoint + "\n",
		"CERT=" + certDir + "\n",
		"VERIFY=1\n",
		"API=" + st.APIVersion + "\n",
		"SERVER=" + st.Version + " " + st.APIVersion + "\n",
		"hello from devbundle\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("docker through env: no %q in\n%s", want, r.stdout)
		}
	}

	// Only clients with this machine's certificate get in.
	checkRefused(t, certDir, endpoint)
	r = c.must(time.Minute, append(m, "ssh", "--", "ss", "-Hltn")...)
	if strings.Contains(r.stdout, ":2375 ") {
		t.Errorf("something listens on plain TCP 2375 in the machine:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, ":2376 ") {
		t.Errorf("nothing listens on 2376 in the machine:\n%s", r.stdout)
	}
	r = c.must(time.Minute, append(m, "ssh", "--", "test", "-S", "/run/docker.sock", "&&", "docker", "info", "--format", "{{.ServerVersion}}")...)
	if strings.TrimSpace(r.stdout) != st.Version {
		t.Errorf("docker over the unix socket in the machine: %q", r.stdout)
	}

	// up on the running machine: cheap, nothing remade, dockerd not restarted.
	pid := dockerdPID(t, c, dockerMachine)
	r = c.must(5*time.Minute, upArgs...)
	if !strings.Contains(r.stderr, "already running") {
		t.Errorf("second up: %q", r.stderr)
	}
	if again := dockerdPID(t, c, dockerMachine); again != pid {
		t.Errorf("second up restarted dockerd: pid %d -> %d", pid, again)
	}
	if _, st2 := dockerState(t, c, dockerMachine); st2.ServerFingerprint != st.ServerFingerprint || st2.CAFingerprint != st.CAFingerprint || st2.ClientFingerprint != st.ClientFingerprint {
		t.Errorf("second up changed certificates: %+v -> %+v", st, st2)
	}

	// service stop: env refuses with 126, nothing on stdout; start brings
	// it back; restart gives dockerd a new PID.
	c.must(3*time.Minute, append(m, "service", "stop", "docker")...)
	r = c.run(time.Minute, append(m, "env", "docker")...)
	if r.code != 126 || r.stdout != "" {
		t.Errorf("env with docker stopped: exit %d, stdout %q; want 126 and nothing", r.code, r.stdout)
	}
	if r := c.run(time.Minute, append(m, "service", "restart", "docker")...); r.code != 126 {
		t.Errorf("restart of a stopped docker: exit %d, want 126", r.code)
	}
	c.must(3*time.Minute, append(m, "service", "start", "docker")...)
	c.must(time.Minute, append(m, "env", "docker")...)
	pid = dockerdPID(t, c, dockerMachine)
	c.must(3*time.Minute, append(m, "service", "restart", "docker")...)
	if again := dockerdPID(t, c, dockerMachine); again == pid || again == 0 {
		t.Errorf("service restart: pid %d -> %d", pid, again)
	}
	r = c.dockerBash(t, cliPath, 2*time.Minute, `eval "$(devbundle -m `+dockerMachine+` env docker)" && docker version --format '{{.Server.Version}}'`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != st.Version {
		t.Errorf("docker after service restart: exit %d %q %s", r.code, r.stdout, r.stderr)
	}

	// halt, then up: the same certificates, still verified by dockerd and
	// the CLI.
	c.must(3*time.Minute, append(m, "halt")...)
	if r := c.run(time.Minute, append(m, "env", "docker")...); r.code != 3 {
		t.Errorf("env on a halted machine: exit %d, want 3", r.code)
	}
	c.must(15*time.Minute, upArgs...)
	if _, st3 := dockerState(t, c, dockerMachine); st3.CAFingerprint != st.CAFingerprint || st3.ClientFingerprint != st.ClientFingerprint || st3.ServerFingerprint != st.ServerFingerprint {
		t.Errorf("halt and up changed certificates: %+v -> %+v", st, st3)
	}
	r = c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+dockerMachine+` env docker)" && docker version --format '{{.Server.Version}}' && docker run --rm devbundle/hello`)
	if r.code != 0 || !strings.Contains(r.stdout, "hello from devbundle") {
		t.Errorf("docker after halt and up: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestDockerInstall brings up the test box built without docker. With no
// way to the package repositories (the box has no DNS server) `up` fails
// with a clear one-line error. Then the project's proxy, a forward proxy
// this test runs on the host's 127.0.0.1, goes into devbundle.yaml: the
// guest reaches it at 10.0.2.2, apt-get installs docker.io from Debian's
// mirror through it, dockerd gets it in its environment, and the host's
// docker CLI runs a container on the installed engine over TLS.
func TestDockerInstall(t *testing.T) {
	boxDir := os.Getenv(envNoDockerDir)
	if boxDir == "" {
		if testbox.InCI() {
			t.Fatalf("%s is not set in CI; tests/run.sh sets it with tests/box/cached.sh --no-docker", envNoDockerDir)
		}
		t.Skipf("%s is not set; build the box with: %s=$(tests/box/cached.sh --no-docker)", envNoDockerDir, envNoDockerDir)
	}
	testbox.Connect(t)
	cliPath := dockerCLI(t)
	proxy := startForwardProxy(t)
	c := newCLI(t, boxDir)
	t.Cleanup(func() { c.run(5*time.Minute, "-m", installMachine, "destroy", "--force") })
	m := []string{"-m", installMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", "devbundle/devbox-nodocker")
	upArgs := append(m, "up", "--box", "devbundle/devbox-nodocker", "--memory", "1024", "--services", "docker")
	r := c.run(15*time.Minute, upArgs...)
	if r.code == 0 {
		t.Fatalf("up installed docker in a box with no DNS server and no proxy: the test's premise is gone\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, "docker is not installed in the machine") || !strings.Contains(r.stderr, "could not reach the package repositories") ||
		!strings.Contains(r.stderr, "proxy") {
		t.Errorf("up without a way to the repositories: %s", r.stderr)
	}
	if i := strings.Index(r.stderr, "error:"); i < 0 || strings.Count(strings.TrimSpace(r.stderr[i:]), "\n") > 1 {
		t.Errorf("the error is not one line and a hint:\n%s", r.stderr)
	}
	if n := proxy.requests(); n != 0 {
		t.Fatalf("the proxy saw %d requests before it was configured", n)
	}

	cfg := filepath.Join(t.TempDir(), "devbundle.yaml")
	if err := os.WriteFile(cfg, []byte("proxy:\n  url: http://"+proxy.addr+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.must(20*time.Minute, append([]string{"--config", cfg}, upArgs...)...)
	if n := proxy.hostRequests("deb.debian.org"); n == 0 {
		t.Errorf("docker was installed, but not through the proxy (it saw %d requests, none for deb.debian.org)", proxy.requests())
	}
	guestProxy := "http://10.0.2.2:" + proxy.addr[strings.LastIndex(proxy.addr, ":")+1:]
	r = c.must(time.Minute, append(m, "ssh", "--", "systemctl", "show", "-p", "Environment", "docker.service")...)
	if !strings.Contains(r.stdout, "HTTP_PROXY="+guestProxy) || !strings.Contains(r.stdout, "HTTPS_PROXY="+guestProxy) {
		t.Errorf("dockerd's environment lacks the proxy %s: %q", guestProxy, r.stdout)
	}
	if _, st := dockerState(t, c, installMachine); st.APIVersion == "" {
		t.Errorf("no API version recorded after the install: %+v", st)
	}
	r = c.must(time.Minute, append(m, "ssh", "--", "id -nG")...)
	if !slices.Contains(strings.Fields(r.stdout), "docker") {
		t.Errorf("login user not in the docker group: %q", r.stdout)
	}
	// No registry is reachable: make an image from the box's busybox.
	c.must(3*time.Minute, append(m, "ssh", "--", `set -e; d=$(mktemp -d); mkdir "$d/bin"; cp /bin/busybox "$d/bin/"; ln -s busybox "$d/bin/echo"; tar -C "$d" -c . | docker import - local/echo`)...)
	r = c.dockerBash(t, cliPath, 3*time.Minute, `eval "$(devbundle -m `+installMachine+` env docker)" && docker version --format '{{.Server.Version}}' && docker run --rm local/echo /bin/echo installed engine runs containers`)
	if r.code != 0 || !strings.Contains(r.stdout, "installed engine runs containers") {
		t.Errorf("docker on the installed engine: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// forwardProxy is a minimal HTTP forward proxy on 127.0.0.1 (plain http
// requests in absolute form, which is what apt-get sends) that counts the
// requests per host.
type forwardProxy struct {
	addr  string
	mu    sync.Mutex
	hosts map[string]int
}

func startForwardProxy(t *testing.T) *forwardProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &forwardProxy{addr: ln.Addr().String(), hosts: map[string]int{}}
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.hosts[r.URL.Hostname()]++
		p.mu.Unlock()
		if !r.URL.IsAbs() || r.URL.Scheme != "http" {
			http.Error(w, "this test proxy forwards plain http requests only", http.StatusMethodNotAllowed)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		for _, h := range []string{"Proxy-Connection", "Proxy-Authorization", "Connection", "Keep-Alive"} {
			out.Header.Del(h)
		}
		resp, err := transport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

func (p *forwardProxy) requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.hosts {
		n += c
	}
	return n
}

func (p *forwardProxy) hostRequests(host string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hosts[host]
}

// dockerCLI is the docker client on this host (no engine runs here).
func dockerCLI(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("docker")
	if err != nil {
		if _, serr := os.Stat("/usr/local/bin/docker"); serr == nil {
			return "/usr/local/bin/docker"
		}
		if testbox.InCI() {
			t.Fatalf("no docker CLI on this host: %v", err)
		}
		t.Skipf("no docker CLI on this host: %v", err)
	}
	return p
}

// dockerBash runs script in bash with `devbundle` (the binary under test)
// and `docker` on PATH, no DOCKER_* variables from the test's environment
// and a private docker config folder.
func (c *cli) dockerBash(t *testing.T, dockerPath string, timeout time.Duration, script string) result {
	t.Helper()
	bin := t.TempDir()
	if err := os.Symlink(c.bin, filepath.Join(bin, "devbundle")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(dockerPath, filepath.Join(bin, "docker")); err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, kv := range c.env {
		if !strings.HasPrefix(kv, "DOCKER_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "DOCKER_CONFIG="+t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := c.exec(ctx, "bash", "-c", script)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("bash: %v", err)
		}
		code = ee.ExitCode()
	}
	t.Logf("bash -> %d\n%s\n%s", code, indent(stdout.String()), indent(stderr.String()))
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// dockerState reads the machine's state.json and its docker entry.
func dockerState(t *testing.T, c *cli, machine string) (*vm.Machine, docker.State) {
	t.Helper()
	return recordedState(t, c, machine, "docker", docker.ReadState)
}

// recordedState reads the machine's state.json and what the named service
// recorded in it, failing the test when it recorded nothing.
func recordedState[T any](t *testing.T, c *cli, machine, service string, read func(*vm.Machine) (T, bool, error)) (*vm.Machine, T) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(c.home, "data", "machines", machine, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m vm.Machine
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	st, ok, err := read(&m)
	if err != nil || !ok {
		t.Fatalf("%s state: %v (recorded: %v)\n%s", service, err, ok, data)
	}
	return &m, st
}

// dockerdPID is dockerd's PID in the machine (0 when it is not running).
func dockerdPID(t *testing.T, c *cli, machine string) int {
	t.Helper()
	r := c.must(time.Minute, "-m", machine, "ssh", "--", "systemctl", "show", "-p", "MainPID", "--value", "docker.service")
	pid, err := strconv.Atoi(strings.TrimSpace(r.stdout))
	if err != nil {
		t.Fatalf("dockerd's PID: %q", r.stdout)
	}
	return pid
}

// checkCertFolder checks the host's DOCKER_CERT_PATH: private folder and
// keys, and the files the docker CLI reads.
func checkCertFolder(t *testing.T, dir string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	info, err := os.Stat(dir)
	if err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("certificate folder %q: %v %v, want 0700", dir, info, err)
	}
	for _, f := range []string{docker.CAFile, docker.ClientCertFile, docker.ClientKeyFile, docker.CAKeyFile, docker.ServerKeyFile} {
		info, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if strings.HasSuffix(f, "key.pem") && info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %o, want 0600", f, info.Mode().Perm())
		}
	}
}

// checkRefused talks to dockerd's TLS port like clients that must not get
// in: plain HTTP, TLS without a client certificate, and a client
// certificate of another CA. Each must be refused; with the machine's own
// client certificate the same request works.
func checkRefused(t *testing.T, certDir, endpoint string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	get := func(scheme string, cfg *tls.Config) (int, string, error) {
		client := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: cfg, DisableKeepAlives: true}, Timeout: 20 * time.Second}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+endpoint+"/version", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body), nil
	}
	caPEM, err := os.ReadFile(filepath.Join(certDir, docker.CAFile))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	pair, err := tls.LoadX509KeyPair(filepath.Join(certDir, docker.ClientCertFile), filepath.Join(certDir, docker.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	host := endpoint[:strings.LastIndex(endpoint, ":")]

	if code, body, err := get("http", nil); err == nil && (code == http.StatusOK || strings.Contains(body, "ApiVersion")) {
		t.Errorf("plain HTTP got an answer: %d %q", code, body)
	}
	if code, body, err := get("https", &tls.Config{RootCAs: roots, ServerName: host}); err == nil {
		t.Errorf("TLS without a client certificate got an answer: %d %q", code, body)
	} else {
		t.Logf("without a client certificate: %v", err)
	}
	other := t.TempDir()
	if _, err := docker.EnsureCerts(docker.CertOptions{Dir: other, Machine: "other", SANs: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	otherPair, err := tls.LoadX509KeyPair(filepath.Join(other, docker.ClientCertFile), filepath.Join(other, docker.ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if code, body, err := get("https", &tls.Config{RootCAs: roots, ServerName: host, Certificates: []tls.Certificate{otherPair}}); err == nil {
		t.Errorf("another CA's client certificate got an answer: %d %q", code, body)
	} else {
		t.Logf("with another CA's client certificate: %v", err)
	}
	code, body, err := get("https", &tls.Config{RootCAs: roots, ServerName: host, Certificates: []tls.Certificate{pair}})
	if err != nil || code != http.StatusOK || !strings.Contains(body, "ApiVersion") {
		t.Errorf("with the machine's client certificate: %d %q %v", code, body, err)
	}
}
