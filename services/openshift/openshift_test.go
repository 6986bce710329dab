package openshift

// Every API answer in these tests is a HAND-WRITTEN FIXTURE shaped from
// OpenShift's documented API (GET /version/openshift of OpenShift 3, the
// config.openshift.io/v1 ClusterVersion object of OpenShift 4, MicroShift's
// kube-public/microshift-version ConfigMap, the route.openshift.io/v1
// docker-registry route), served over real TLS by an httptest server. No
// real OpenShift or MicroShift ran: neither can be built or run on
// devbundle's test machines (see the package comment).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/kubernetes/kubeapi"
	"github.com/devbundle/devbundle/services/kubernetes/kubetest"
	"github.com/devbundle/devbundle/vm"
	"github.com/devbundle/devbundle/vm/sshc"
)

// fixtures are API answers by path.
var (
	v3Fixtures = map[string]string{
		"/healthz":           "ok",
		"/version":           `{"major":"1","minor":"11+","gitVersion":"v1.11.0+d4cacc0","platform":"linux/amd64"}`,
		"/version/openshift": `{"major":"3","minor":"11+","gitVersion":"v3.11.0+0cbc58b","gitCommit":"0cbc58b","platform":"linux/amd64"}`,
		"/apis/route.openshift.io/v1/namespaces/default/routes/docker-registry": `{"kind":"Route","apiVersion":"route.openshift.io/v1","metadata":{"name":"docker-registry","namespace":"default"},"spec":{"host":"docker-registry-default.127.0.0.1.nip.io","to":{"kind":"Service","name":"docker-registry"}}}`,
	}
	ocp4Fixtures = map[string]string{
		"/readyz":  "ok",
		"/version": `{"major":"1","minor":"27","gitVersion":"v1.27.6+f67aeb3","platform":"linux/amd64"}`,
		"/apis/config.openshift.io/v1/clusterversions/version": `{"apiVersion":"config.openshift.io/v1","kind":"ClusterVersion","metadata":{"name":"version"},"spec":{"channel":"stable-4.14"},"status":{"desired":{"version":"4.14.3","image":"quay.io/openshift-release-dev/ocp-release@sha256:00"}}}`,
	}
	microshiftFixtures = map[string]string{
		"/readyz":  "ok",
		"/version": `{"major":"1","minor":"27","gitVersion":"v1.27.6","platform":"linux/amd64"}`,
		"/api/v1/namespaces/kube-public/configmaps/microshift-version": `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"microshift-version","namespace":"kube-public"},"data":{"major":"4","minor":"14","patch":"3","version":"4.14.3"}}`,
	}
)

// fixtureServer serves fixtures over TLS with the PKI's certificate while
// up() holds.
func fixtureServer(t *testing.T, p *kubetest.PKI, fixtures map[string]string, up func() bool) int {
	return p.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		body, ok := fixtures[r.URL.Path]
		if !ok {
			http.Error(w, `{"kind":"Status","status":"Failure","reason":"NotFound","code":404}`, http.StatusNotFound)
			return
		}
		_, _ = io.WriteString(w, body)
	}))
}

// fakeGuest answers the probe and unit commands for a box with OpenShift.
type fakeGuest struct {
	t         *testing.T
	mu        sync.Mutex
	units     map[string]string // unit -> ActiveState
	container string
	files     map[string][]byte
	started   []string
	stopped   []string
	main      string
}

func (g *fakeGuest) up() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.units[g.main] == "active" || (g.main == "container" && g.container == "true")
}

func words(cmd string) []string {
	_, rest, _ := strings.Cut(cmd, "' devbundle ")
	var out []string
	for _, w := range strings.Fields(rest) {
		out = append(out, strings.Trim(w, "'"))
	}
	return out
}

func (g *fakeGuest) Run(ctx context.Context, cmd string, opts sshc.RunOptions) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case strings.Contains(cmd, "devbundle-openshift-probe"):
		var b strings.Builder
		b.WriteString("systemctl=/usr/bin/systemctl\n")
		for u, st := range g.units {
			fmt.Fprintf(&b, "unit.%s.LoadState=loaded\nunit.%s.ActiveState=%s\n", u, u, st)
		}
		if g.container != "" {
			fmt.Fprintf(&b, "container=%s\n", g.container)
		}
		for f, data := range g.files {
			fmt.Fprintf(&b, "file:%s=%s\n", f, base64.StdEncoding.EncodeToString(data))
		}
		b.WriteString("end=1\n")
		_, _ = io.WriteString(opts.Stdout, b.String())
	case strings.Contains(cmd, "systemctl start"):
		w := words(cmd)
		for _, u := range w[1:] {
			g.started = append(g.started, u)
			g.units[u] = "active"
		}
		if w[0] == "start" {
			g.started = append(g.started, "container")
			g.container = "true"
		}
	case strings.Contains(cmd, "systemctl stop"):
		w := words(cmd)
		for _, u := range w[1:] {
			g.stopped = append(g.stopped, u)
			g.units[u] = "inactive"
		}
		if w[0] == "stop" {
			g.stopped = append(g.stopped, "container")
			g.container = "false"
		}
	default:
		g.t.Errorf("unexpected command %q", cmd)
		return 127, nil
	}
	return 0, nil
}

func (g *fakeGuest) Output(ctx context.Context, cmd string) ([]byte, error) {
	g.t.Errorf("unexpected Output %q", cmd)
	return nil, io.EOF
}

func (g *fakeGuest) Upload(ctx context.Context, path string, data []byte, mode os.FileMode, opts sshc.UploadOptions) error {
	g.t.Errorf("unexpected upload %q", path)
	return nil
}

func (g *fakeGuest) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	g.t.Errorf("unexpected dial %q", addr)
	return nil, io.EOF
}

func setup(t *testing.T, f Flavour, fixtures map[string]string, units map[string]string, main string) (*fakeGuest, services.Context) {
	p := kubetest.NewPKI(t, "127.0.0.1", "localhost")
	g := &fakeGuest{t: t, units: units, files: map[string][]byte{}, main: main}
	port := fixtureServer(t, p, fixtures, g.up)
	adminPath := adminKubeconfigs[f][0]
	g.files[adminPath] = p.AdminKubeconfig("https://10.0.2.15:8443")
	m := &vm.Machine{Name: "m1", Network: "user", Services: map[string]json.RawMessage{}}
	fwd := vm.Forward{Name: Name, GuestPort: MasterPort, HostIP: "127.0.0.1", HostPort: port}
	if f == FlavourMicroShift {
		fwd = vm.Forward{Name: MicroShiftForward, GuestPort: MicroShiftPort, HostIP: "127.0.0.1", HostPort: port}
	}
	m.Forwards = []vm.Forward{fwd}
	dir := t.TempDir()
	return g, services.Context{Guest: g, Machine: m, Dir: dir, Log: t.Logf}
}

func enable(t *testing.T, sc services.Context) State {
	t.Helper()
	raw, err := New(Options{ReadyTimeout: 20 * time.Second}).Enable(context.Background(), sc)
	if err != nil {
		t.Fatalf("enable: %v (hint %q)", err, dberr.Hint(err))
	}
	var st State
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	sc.Machine.Services[Name] = raw
	return st
}

func TestOrigin3FixtureEnableEnvVersion(t *testing.T) {
	g, sc := setup(t, FlavourOrigin, v3Fixtures, map[string]string{"docker": "active", "openshift": "inactive"}, "openshift")
	st := enable(t, sc)
	if !slices.Equal(g.started, []string{"openshift"}) {
		t.Errorf("started %v", g.started)
	}
	port := sc.Machine.Forwards[0].HostPort
	if st.Flavour != FlavourOrigin || st.Version != "v3.11.0+0cbc58b" || st.VersionSource != "/version/openshift" ||
		st.KubernetesVersion != "v1.11.0+d4cacc0" || st.Registry != "docker-registry-default.127.0.0.1.nip.io" ||
		st.Endpoint != "127.0.0.1:"+strconv.Itoa(port) || !st.Console {
		t.Errorf("state %+v", st)
	}
	info, err := New(Options{}).Env(sc.Machine, sc.Dir)
	if err != nil {
		t.Fatal(err)
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port)
	want := map[string]string{"OPENSHIFT_URL": url, "OPENSHIFT_WEB_CONSOLE": url + "/console", "DOCKER_REGISTRY": st.Registry}
	if len(info.Vars) != 3 {
		t.Errorf("vars %+v", info.Vars)
	}
	for _, v := range info.Vars {
		if want[v.Name] != v.Value {
			t.Errorf("%s=%q, want %q", v.Name, v.Value, want[v.Name])
		}
	}
	if !strings.Contains(strings.Join(info.Comment, "\n"), "oc login "+url) {
		t.Errorf("comment %q", info.Comment)
	}
	if v, err := New(Options{}).ServerVersion(context.Background(), sc.Machine, sc.Dir); err != nil || v != "v3.11.0" {
		t.Errorf("server version %q %v", v, err)
	}
	fi, err := os.Stat(filepath.Join(sc.Dir, KubeconfigFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig: %v %v", fi, err)
	}
	// stop then status.
	if err := New(Options{}).Stop(context.Background(), sc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.stopped, []string{"openshift"}) || g.units["docker"] != "active" {
		t.Errorf("stopped %v, docker %s", g.stopped, g.units["docker"])
	}
	if st, err := New(Options{}).Status(context.Background(), sc); err != nil || st != services.StatusStopped {
		t.Errorf("status %v %v", st, err)
	}
}

func TestOcClusterUpContainerFixture(t *testing.T) {
	g, sc := setup(t, FlavourOrigin, v3Fixtures, map[string]string{"docker": "active"}, "container")
	g.container = "false"
	st := enable(t, sc)
	if !slices.Equal(g.started, []string{"container"}) || st.Version != "v3.11.0+0cbc58b" {
		t.Errorf("started %v, state %+v", g.started, st)
	}
	if s, _ := New(Options{}).Status(context.Background(), sc); s != services.StatusRunning {
		t.Errorf("status %v", s)
	}
	if err := New(Options{}).Stop(context.Background(), sc); err != nil || g.container != "false" {
		t.Errorf("stop: %v, container %q", err, g.container)
	}
}

func TestMicroShiftFixture(t *testing.T) {
	g, sc := setup(t, FlavourMicroShift, microshiftFixtures, map[string]string{"crio": "inactive", "microshift": "inactive"}, "microshift")
	st := enable(t, sc)
	if !slices.Equal(g.started, []string{"crio", "microshift"}) {
		t.Errorf("started %v", g.started)
	}
	if st.Version != "4.14.3" || !strings.Contains(st.VersionSource, "microshift-version") || st.GuestPort != 6443 || st.Registry != "" || st.Console {
		t.Errorf("state %+v", st)
	}
	info, err := New(Options{}).Env(sc.Machine, sc.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Vars) != 2 || info.Vars[0].Name != "OPENSHIFT_URL" || info.Vars[1].Name != "KUBECONFIG" || info.Vars[1].Value != KubeconfigPath(sc.Dir) {
		t.Errorf("vars %+v", info.Vars)
	}
	if e, err := kubeapi.Load(KubeconfigPath(sc.Dir)); err != nil || !strings.Contains(e.Server, "127.0.0.1") {
		t.Errorf("kubeconfig: %+v %v", e.Server, err)
	}
	if v, err := New(Options{}).ServerVersion(context.Background(), sc.Machine, sc.Dir); err != nil || v != "4.14.3" {
		t.Errorf("server version %q %v", v, err)
	}
	if err := New(Options{}).Stop(context.Background(), sc); err != nil || !slices.Equal(g.stopped, []string{"microshift"}) {
		t.Errorf("stop %v %v", err, g.stopped)
	}
}

func TestClusterVersionFixture(t *testing.T) {
	p := kubetest.NewPKI(t, "127.0.0.1")
	port := fixtureServer(t, p, ocp4Fixtures, func() bool { return true })
	c, err := kubeapi.NewClient(kubeapi.Endpoint{Server: "https://127.0.0.1:" + strconv.Itoa(port),
		Credentials: kubeapi.Credentials{CA: p.CAPEM, ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	v, from, err := openshiftVersion(context.Background(), c)
	if err != nil || v != "4.14.3" || !strings.Contains(from, "clusterversions") {
		t.Errorf("version %q from %q: %v", v, from, err)
	}
	// A plain Kubernetes is not OpenShift.
	plain := fixtureServer(t, p, map[string]string{"/version": `{"gitVersion":"v1.33.13"}`}, func() bool { return true })
	c2, _ := kubeapi.NewClient(kubeapi.Endpoint{Server: "https://127.0.0.1:" + strconv.Itoa(plain),
		Credentials: kubeapi.Credentials{CA: p.CAPEM, ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}})
	defer c2.Close()
	if _, _, err := openshiftVersion(context.Background(), c2); err == nil || !strings.Contains(err.Error(), "no OpenShift version") {
		t.Errorf("plain kubernetes: %v", err)
	}
}

func TestNoOpenShiftInTheBox(t *testing.T) {
	g := &fakeGuest{t: t, units: map[string]string{"docker": "active"}, files: map[string][]byte{}}
	sc := services.Context{Guest: g, Machine: &vm.Machine{Name: "m1", Network: "user"}, Dir: t.TempDir()}
	_, err := New(Options{}).Enable(context.Background(), sc)
	if err == nil || !strings.Contains(err.Error(), "has no OpenShift") || dberr.ExitCode(err) != 126 {
		t.Errorf("got %v (exit %d)", err, dberr.ExitCode(err))
	}
	if st, err := New(Options{}).Status(context.Background(), sc); err != nil || st != services.StatusUnavailable {
		t.Errorf("status %v %v", st, err)
	}
}

func TestPorts(t *testing.T) {
	ports := New(Options{}).Ports()
	if len(ports) != 2 || ports[0] != (vm.Forward{Name: "openshift", GuestPort: 8443}) || ports[1] != (vm.Forward{Name: "openshift-microshift", GuestPort: 6443}) {
		t.Errorf("ports %+v", ports)
	}
	if err := services.CheckExclusive([]string{"docker", "kubernetes", "openshift"}); err == nil || dberr.ExitCode(err) != 1 || strings.Contains(err.Error(), "\n") {
		t.Errorf("exclusive: %v", err)
	}
}
