//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/tests/testbox"
)

const installCLIMachine = "e2e-installcli"

// TestInstallCLIDocker boots the docker test box and runs `install-cli
// docker` against a local HTTPS mirror laid out like download.docker.com,
// holding docker-<version>.tgz built from Debian's docker.io client (the
// same build as dockerd in the box; tests/clibins/mirror-binaries.sh). The
// version comes from the running dockerd; the installed client reports
// exactly that version and, with `env docker`, talks to the VM's dockerd.
// A second call makes no request; a matching client already on PATH is
// used as it is; a stopped dockerd gives exit 126.
func TestInstallCLIDocker(t *testing.T) {
	boxDir := testbox.Dir(t)
	testbox.Connect(t)
	debianDocker := debianDockerClient(t)
	c := newCLI(t, boxDir)
	t.Cleanup(func() { c.run(5*time.Minute, "-m", installCLIMachine, "destroy", "--force") })
	m := []string{"-m", installCLIMachine}

	c.must(5*time.Minute, "box", "add", filepath.Join(boxDir, testbox.BoxFile), "--name", testbox.BoxName)
	c.must(15*time.Minute, append(m, "up", "--box", testbox.BoxName, "--memory", "1024", "--services", "docker")...)
	_, st := dockerState(t, c, installCLIMachine)
	serverVersion := services.UpstreamVersion(st.Version) // 20.10.24+dfsg1 -> 20.10.24
	if serverVersion == "" {
		t.Fatalf("docker state version %q", st.Version)
	}

	mirror := newDockerMirror(t, debianDocker, serverVersion)
	// Only an empty folder on PATH: whatever docker the host has is not
	// considered, so the download path is what runs.
	emptyPath := t.TempDir()
	env := append(withoutEnv(c.env, "PATH", "DOCKER_"),
		"DEVBUNDLE_MIRROR_DOCKER="+mirror.srv.URL,
		"SSL_CERT_FILE="+mirror.caFile,
		"PATH="+emptyPath,
	)
	r := c.runEnv(env, 5*time.Minute, append(m, "install-cli", "docker", "--shell", "bash")...)
	if r.code != 0 {
		t.Fatalf("install-cli docker: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	cached := filepath.Join(c.home, "cache", "bin", "docker", serverVersion, "linux-amd64", "docker")
	if !strings.Contains(r.stdout, "# The docker "+serverVersion+" client for linux/amd64 is installed at:") ||
		!strings.Contains(r.stdout, "export PATH='"+filepath.Dir(cached)+":"+emptyPath+"'") {
		t.Errorf("install-cli output:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "cannot be verified: docker publishes no checksum") {
		t.Errorf("no unverified-download warning:\n%s", r.stderr)
	}
	if got := mirror.requests.Load(); got != 1 {
		t.Errorf("first install-cli made %d requests, want 1", got)
	}
	// No daemon is named here, so docker exits 1 after printing the client
	// part; the client version is what counts.
	out, err := exec.Command(cached, "version", "--format", "{{.Client.Version}}").Output()
	if strings.TrimSpace(string(out)) != st.Version {
		t.Errorf("installed client reports %q (%v), want the server's %q", out, err, st.Version)
	}

	// Second call: the cache, no request to the mirror.
	r2 := c.runEnv(env, time.Minute, append(m, "install-cli", "docker", "--shell", "bash")...)
	if r2.code != 0 || r2.stdout != r.stdout || mirror.requests.Load() != 1 {
		t.Errorf("second install-cli: exit %d, requests %d, output\n%s", r2.code, mirror.requests.Load(), r2.stdout)
	}

	// The user's path: eval env and install-cli in bash; the installed
	// client is the one found and talks to dockerd in the VM.
	// (dockerBash also puts Debian's client on PATH, but the cache, which
	// holds the version now, is what install-cli answers from.)
	saved := c.env
	c.env = env
	r = c.dockerBash(t, debianDocker, 3*time.Minute, `eval "$(devbundle -m `+installCLIMachine+` env docker)" || exit 99
eval "$(devbundle -m `+installCLIMachine+` install-cli docker)" || exit 98
printf 'FOUND=%s\n' "$(command -v docker)"
docker version --format 'CLIENT={{.Client.Version}} SERVER={{.Server.Version}}' || exit 97`)
	c.env = saved
	if r.code != 0 {
		t.Fatalf("bash: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"FOUND=" + cached + "\n", "CLIENT=" + st.Version + " SERVER=" + st.Version + "\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bash: no %q in\n%s", want, r.stdout)
		}
	}

	// The same client already on PATH (a fresh cache): used, no request.
	onPath := t.TempDir()
	if err := os.Symlink(debianDocker, filepath.Join(onPath, "docker")); err != nil {
		t.Fatal(err)
	}
	pathEnv := append(withoutEnv(env, "PATH", "DEVBUNDLE_HOME"), "PATH="+onPath, "DEVBUNDLE_HOME="+t.TempDir())
	before := mirror.requests.Load()
	r = c.runEnv(pathEnv, time.Minute, "install-cli", "docker", "--cli-version", st.Version, "--shell", "bash")
	if r.code != 0 || !strings.Contains(r.stderr, "already on your PATH at "+filepath.Join(onPath, "docker")) || mirror.requests.Load() != before {
		t.Errorf("client on PATH: exit %d, requests %d\nstdout: %s\nstderr: %s", r.code, mirror.requests.Load()-before, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "export ") {
		t.Errorf("client on PATH: output changes PATH:\n%s", r.stdout)
	}

	// dockerd stopped: exit 126, nothing on stdout, --cli-version named.
	c.must(3*time.Minute, append(m, "service", "stop", "docker")...)
	r = c.runEnv(env, time.Minute, append(m, "install-cli", "docker")...)
	if r.code != 126 || r.stdout != "" || !strings.Contains(r.stderr, "--cli-version") {
		t.Errorf("install-cli with dockerd stopped: exit %d (want 126)\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// debianDockerClient is Debian's docker client from
// DEVBUNDLE_CLIBINS_DIR; without it the test skips loudly, or fails in CI.
func debianDockerClient(t *testing.T) string {
	t.Helper()
	p := filepath.Join(os.Getenv("DEVBUNDLE_CLIBINS_DIR"), "docker")
	if os.Getenv("DEVBUNDLE_CLIBINS_DIR") == "" {
		p = ""
	}
	if _, err := os.Stat(p); p == "" || err != nil {
		msg := "!!! INSTALL-CLI E2E SKIPPED: DEVBUNDLE_CLIBINS_DIR has no docker client; run DEVBUNDLE_CLIBINS_DIR=$(bash tests/clibins/mirror-binaries.sh)"
		if testbox.InCI() {
			t.Fatal(msg)
		}
		fmt.Fprintln(os.Stderr, msg)
		t.Skip(msg)
	}
	return p
}

type dockerMirror struct {
	srv      *httptest.Server
	caFile   string
	requests atomic.Int32
}

// newDockerMirror serves docker-<version>.tgz (docker/docker inside) at
// download.docker.com's path, over HTTPS with a certificate the devbundle
// process trusts through SSL_CERT_FILE.
func newDockerMirror(t *testing.T, client, version string) *dockerMirror {
	t.Helper()
	data, err := os.ReadFile(client)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: "docker/", Typeflag: tar.TypeDir, Mode: 0o755})
	_ = tw.WriteHeader(&tar.Header{Name: "docker/docker", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(data))})
	if _, err := tw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	archive := buf.Bytes()
	path := "/linux/static/stable/x86_64/docker-" + version + ".tgz"
	m := &dockerMirror{}
	m.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		if r.URL.Path != path {
			http.NotFound(w, r)
			return
		}
		http.ServeContent(w, r, "docker.tgz", time.Unix(1700000000, 0), bytes.NewReader(archive))
	}))
	t.Cleanup(m.srv.Close)
	m.caFile = filepath.Join(t.TempDir(), "mirror-ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.srv.Certificate().Raw})
	if err := os.WriteFile(m.caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

func withoutEnv(env []string, prefixes ...string) []string {
	var out []string
	for _, kv := range env {
		keep := true
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) && (strings.HasSuffix(p, "_") || strings.HasPrefix(kv, p+"=")) {
				keep = false
			}
		}
		if keep {
			out = append(out, kv)
		}
	}
	return out
}

// runEnv runs devbundle with env instead of the cli's environment.
func (c *cli) runEnv(env []string, timeout time.Duration, args ...string) result {
	c.t.Helper()
	saved := c.env
	c.env = env
	defer func() { c.env = saved }()
	return c.run(timeout, args...)
}

// newKubectlMirror serves kubectl and its .sha256 at dl.k8s.io's path for
// version (linux/amd64), over HTTPS trusted through SSL_CERT_FILE.
func newKubectlMirror(t *testing.T, kubectl, version string) *dockerMirror {
	t.Helper()
	data, err := os.ReadFile(kubectl)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	base := "/release/" + version + "/bin/linux/amd64/kubectl"
	m := &dockerMirror{}
	m.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.requests.Add(1)
		switch r.URL.Path {
		case base:
			http.ServeContent(w, r, "kubectl", time.Unix(1700000000, 0), bytes.NewReader(data))
		case base + ".sha256":
			fmt.Fprint(w, hex.EncodeToString(sum[:]))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(m.srv.Close)
	m.caFile = filepath.Join(t.TempDir(), "mirror-ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: m.srv.Certificate().Raw})
	if err := os.WriteFile(m.caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return m
}

// checkInstallCLIKubernetes runs `install-cli kubernetes` against a running
// Kubernetes machine: the version comes from the API server's /version,
// kubectl (the box's build of that version) is verified against its
// .sha256 from a local mirror laid out like dl.k8s.io, and the installed
// kubectl, found first on PATH after eval, reports that version and
// reaches the cluster with `env kubernetes`.
func checkInstallCLIKubernetes(t *testing.T, c *cli, machine, boxKubectl, serverVersion string) {
	t.Helper()
	mirror := newKubectlMirror(t, boxKubectl, serverVersion)
	saved := c.env
	c.env = append(withoutEnv(c.env, "DEVBUNDLE_MIRROR_KUBECTL", "SSL_CERT_FILE"),
		"DEVBUNDLE_MIRROR_KUBECTL="+mirror.srv.URL, "SSL_CERT_FILE="+mirror.caFile)
	defer func() { c.env = saved }()
	// The cache names versions without Kubernetes' "v" (the URL keeps it).
	cached := filepath.Join(c.home, "cache", "bin", "kubectl", strings.TrimPrefix(serverVersion, "v"), "linux-amd64", "kubectl")
	r := c.kubeBash(t, "/bin/false", 5*time.Minute, `eval "$(devbundle -m `+machine+` env kubernetes)" || exit 99
eval "$(devbundle -m `+machine+` install-cli kubernetes)" || exit 98
printf 'FOUND=%s\n' "$(command -v kubectl)"
kubectl version -o json || exit 97
kubectl get namespace devbundle-e2e -o name || exit 96`)
	if r.code != 0 {
		t.Fatalf("install-cli kubernetes in bash: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "FOUND="+cached+"\n") || !strings.Contains(r.stdout, "namespace/devbundle-e2e") {
		t.Errorf("install-cli kubernetes in bash:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, `"gitVersion": "`+serverVersion+`"`) {
		t.Errorf("the installed kubectl does not report %s:\n%s", serverVersion, r.stdout)
	}
	if got := mirror.requests.Load(); got != 2 {
		t.Errorf("install-cli made %d requests to the mirror, want 2 (kubectl and its .sha256)", got)
	}
}
