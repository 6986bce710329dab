package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/dberr"
	"github.com/devbundle/devbundle/services"
	"github.com/devbundle/devbundle/services/kubernetes/kubeapi"
	"github.com/devbundle/devbundle/vm"
)

func machineFor(g *fakeGuest) *vm.Machine {
	return &vm.Machine{
		Name: "m1", Network: "user",
		Forwards: []vm.Forward{
			{Name: "ssh", GuestPort: 22, HostIP: "127.0.0.1", HostPort: 40022},
			{Name: "kubernetes", GuestPort: 6443, HostIP: "127.0.0.1", HostPort: g.apiPort},
		},
		Services: map[string]json.RawMessage{},
	}
}

func svcContext(t *testing.T, g *fakeGuest, m *vm.Machine) services.Context {
	dir := filepath.Join(t.TempDir(), "kubernetes")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return services.Context{Guest: g, Machine: m, Dir: dir, Log: t.Logf}
}

func enable(t *testing.T, s *Service, sc services.Context) State {
	t.Helper()
	raw, err := s.Enable(context.Background(), sc)
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

func TestEnableUnitsBox(t *testing.T) {
	g := newFakeGuest(t)
	g.pkiOnStart = true
	delete(g.files, adminConf) // the PKI unit makes it at the first start
	m := machineFor(g)
	sc := svcContext(t, g, m)
	s := New(Options{ReadyTimeout: 20 * time.Second})

	st := enable(t, s, sc)
	// etcd before the API server, the control plane before the node;
	// containerd already runs; kube-proxy is not in this box.
	want := []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"}
	if !slices.Equal(g.started, want) {
		t.Errorf("started %v, want %v", g.started, want)
	}
	endpoint := "127.0.0.1:" + strconv.Itoa(g.apiPort)
	if st.Flavour != FlavourUnits || st.Version != "v1.33.13" || st.Endpoint != endpoint || st.GuestPort != 6443 ||
		st.TLSServerName != "" || st.Credentials != adminConf || len(st.CAFingerprint) != 64 {
		t.Errorf("state %+v", st)
	}

	path := KubeconfigPath(sc.Dir)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("kubeconfig mode %v, want 0600", info.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	text := string(data)
	for _, want := range []string{
		"server: https://" + endpoint + "\n",
		"certificate-authority-data: ",
		"client-certificate-data: ",
		"client-key-data: ",
		"current-context: devbundle-m1\n",
		"name: devbundle-m1-admin\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("kubeconfig lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "insecure") || strings.Contains(text, "tls-server-name") {
		t.Errorf("kubeconfig skips or renames verification:\n%s", text)
	}
	// The file works: a client built from it alone gets /version.
	e, err := kubeapi.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubeapi.NewClient(e)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if v, err := c.Version(context.Background(), "/version"); err != nil || v.GitVersion != "v1.33.13" {
		t.Errorf("version through the kubeconfig: %+v %v", v, err)
	}

	// A second up on the running machine: one SSH command, nothing
	// started, the kubeconfig not rewritten.
	before, _ := os.Stat(path)
	g.reset()
	time.Sleep(10 * time.Millisecond)
	st2 := enable(t, s, sc)
	if len(g.cmds) != 1 || len(g.started) != 0 {
		t.Errorf("second enable ran %d commands, started %v:\n%s", len(g.cmds), g.started, strings.Join(g.cmds, "\n"))
	}
	if after, _ := os.Stat(path); !after.ModTime().Equal(before.ModTime()) {
		t.Errorf("second enable rewrote the kubeconfig")
	}
	if st2 != st {
		t.Errorf("state changed: %+v -> %+v", st, st2)
	}
}

func TestEnableKubeadmBoxWithoutLoopbackInCertificate(t *testing.T) {
	// kubeadm's serving certificate has no 127.0.0.1.
	g := newFakeGuest(t, "kubernetes", "kubernetes.default.svc", "10.96.0.1", "10.0.2.15")
	g.units = map[string]string{"containerd": "inactive", "kubelet": "inactive"}
	g.kubeadm, g.main = true, "kubelet"
	m := machineFor(g)
	sc := svcContext(t, g, m)
	st := enable(t, New(Options{ReadyTimeout: 20 * time.Second}), sc)
	if !slices.Equal(g.started, []string{"containerd", "kubelet"}) {
		t.Errorf("started %v", g.started)
	}
	if st.Flavour != FlavourKubeadm || st.TLSServerName != "kubernetes" {
		t.Errorf("state %+v", st)
	}
	data, _ := os.ReadFile(KubeconfigPath(sc.Dir))
	if !strings.Contains(string(data), "tls-server-name: kubernetes\n") || strings.Contains(string(data), "insecure") {
		t.Errorf("kubeconfig:\n%s", data)
	}
	e, err := kubeapi.Load(KubeconfigPath(sc.Dir))
	if err != nil || e.ServerName != "kubernetes" {
		t.Fatalf("load: %+v %v", e.ServerName, err)
	}
	if v, err := New(Options{}).ServerVersion(context.Background(), m, sc.Dir); err != nil || v != "v1.33.13" {
		t.Errorf("server version %q %v", v, err)
	}
}

func TestEnableK3sBox(t *testing.T) {
	g := newFakeGuest(t)
	g.units = map[string]string{"k3s": "inactive"}
	g.main = "k3s"
	g.version = "v1.28.3+k3s1"
	g.files = map[string][]byte{k3sYAML: g.pki.AdminKubeconfig("https://127.0.0.1:6443")}
	m := machineFor(g)
	sc := svcContext(t, g, m)
	s := New(Options{ReadyTimeout: 20 * time.Second})
	st := enable(t, s, sc)
	if !slices.Equal(g.started, []string{"k3s"}) || st.Flavour != FlavourK3s || st.Credentials != k3sYAML || st.Version != "v1.28.3+k3s1" {
		t.Errorf("started %v, state %+v", g.started, st)
	}
	if v, err := s.ServerVersion(context.Background(), m, sc.Dir); err != nil || v != "v1.28.3" {
		t.Errorf("server version %q %v", v, err)
	}
}

func TestEnableMakesClientCertWithCAKey(t *testing.T) {
	g := newFakeGuest(t)
	delete(g.files, adminConf)
	g.files["/etc/kubernetes/pki/ca.crt"] = g.pki.CAPEM
	g.files["/etc/kubernetes/pki/ca.key"] = g.pki.CAKeyPEM
	g.openssl = true
	sc := svcContext(t, g, machineFor(g))
	st := enable(t, New(Options{ReadyTimeout: 20 * time.Second}), sc)
	if st.Credentials != generatedConf {
		t.Errorf("credentials from %q", st.Credentials)
	}
	var signed string
	for _, c := range g.cmds {
		if strings.Contains(c, "openssl x509 -req") {
			signed = c
		}
	}
	if !strings.Contains(signed, "'/etc/kubernetes/pki/ca.crt' '/etc/kubernetes/pki/ca.key'") || !strings.Contains(signed, "system:masters") {
		t.Errorf("signing command %q", signed)
	}
	// The second up reuses the certificate it made.
	g.reset()
	enable(t, New(Options{ReadyTimeout: 20 * time.Second}), sc)
	for _, c := range g.cmds {
		if strings.Contains(c, "openssl") && !strings.Contains(c, "devbundle-kube-probe") {
			t.Errorf("second up signed again: %q", c)
		}
	}
	// One that expires within 30 days is remade.
	g.reset()
	late := New(Options{ReadyTimeout: 20 * time.Second, Now: func() time.Time { return time.Now().Add(365 * 24 * time.Hour) }})
	enable(t, late, sc)
	n := 0
	for _, c := range g.cmds {
		if strings.Contains(c, "openssl x509 -req") {
			n++
		}
	}
	if n != 1 {
		t.Errorf("an expiring certificate was signed %d times, want 1", n)
	}
}

func TestEnableRefuses(t *testing.T) {
	cases := []struct {
		name  string
		setup func(g *fakeGuest, m *vm.Machine)
		want  string
		hint  string
		code  int
	}{
		{"no kubernetes in the box", func(g *fakeGuest, m *vm.Machine) {
			g.units = map[string]string{"containerd": "active", "docker": "active"}
		}, "has no Kubernetes", "--kubernetes", 126},
		{"CA key without openssl", func(g *fakeGuest, m *vm.Machine) {
			delete(g.files, adminConf)
			g.files["/var/lib/kubernetes/ca.pem"] = g.pki.CAPEM
			g.files["/var/lib/kubernetes/ca-key.pem"] = g.pki.CAKeyPEM
		}, "no openssl", "install openssl", 1},
		{"no credentials at all", func(g *fakeGuest, m *vm.Machine) { delete(g.files, adminConf) }, "no admin kubeconfig", "systemctl status kube-apiserver", 1},
		{"another secure port", func(g *fakeGuest, m *vm.Machine) { g.port = "8443" }, "port 8443", "", 1},
		{"a unit that fails", func(g *fakeGuest, m *vm.Machine) { g.startFail = "kube-apiserver" }, "kube-apiserver failed to start", "journalctl -u kube-apiserver.service", 1},
		{"no forward", func(g *fakeGuest, m *vm.Machine) { m.Forwards = m.Forwards[:1] }, "no forwarded port", "devbundle halt", 1},
		{"admin kubeconfig without a CA", func(g *fakeGuest, m *vm.Machine) {
			g.files[adminConf] = []byte(strings.Replace(string(g.files[adminConf]), "certificate-authority-data", "x-ca", 1))
		}, "never skips TLS verification", "", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := newFakeGuest(t)
			m := machineFor(g)
			tc.setup(g, m)
			_, err := New(Options{ReadyTimeout: 5 * time.Second}).Enable(context.Background(), svcContext(t, g, m))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !strings.Contains(dberr.Hint(err), tc.hint) {
				t.Errorf("hint %q, want %q in it", dberr.Hint(err), tc.hint)
			}
			if dberr.ExitCode(err) != tc.code {
				t.Errorf("exit %d, want %d", dberr.ExitCode(err), tc.code)
			}
		})
	}
}

func TestEnableReadyTimeoutCarriesTheLog(t *testing.T) {
	g := newFakeGuest(t)
	g.main = "nothing" // the API server never answers
	start := time.Now()
	_, err := New(Options{ReadyTimeout: 2 * time.Second}).Enable(context.Background(), svcContext(t, g, machineFor(g)))
	if err == nil || !strings.Contains(err.Error(), "did not become ready") || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(dberr.Hint(err), "journalctl -u kube-apiserver") {
		t.Errorf("hint %q", dberr.Hint(err))
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the wait took %s with a 2 s deadline", d)
	}
}

func TestEnableStopsAtOnceOnAForeignCA(t *testing.T) {
	g := newFakeGuest(t)
	// The box's admin.conf names another CA than the server's.
	other := newFakeGuest(t)
	g.files[adminConf] = other.pki.AdminKubeconfig("https://127.0.0.1:6443")
	start := time.Now()
	_, err := New(Options{ReadyTimeout: time.Minute}).Enable(context.Background(), svcContext(t, g, machineFor(g)))
	var ce *kubeapi.CertificateError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a certificate error", err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a certificate error waited %s", d)
	}
}

func TestEnableProxy(t *testing.T) {
	g := newFakeGuest(t)
	m := machineFor(g)
	sc := svcContext(t, g, m)
	sc.Proxy = "http://user:pw@127.0.0.1:3128"
	s := New(Options{ReadyTimeout: 20 * time.Second})
	enable(t, s, sc)
	path := "/etc/systemd/system/containerd.service.d/" + proxyDropIn
	data, ok := g.files[path]
	if !ok {
		t.Fatalf("no drop-in uploaded: %v", g.uploads)
	}
	if !strings.Contains(string(data), `"HTTPS_PROXY=http://user:pw@10.0.2.2:3128"`) || !strings.Contains(string(data), "10.0.0.0/8") {
		t.Errorf("drop-in:\n%s", data)
	}
	if !slices.Equal(g.restarted, []string{"containerd"}) {
		t.Errorf("restarted %v, want containerd (it was running)", g.restarted)
	}
	g.reset()
	enable(t, s, sc)
	if len(g.uploads) != 0 || len(g.restarted) != 0 {
		t.Errorf("unchanged proxy: uploads %v restarts %v", g.uploads, g.restarted)
	}
	g.reset()
	sc.Proxy = ""
	enable(t, s, sc)
	if _, ok := g.files[path]; ok || !slices.Equal(g.restarted, []string{"containerd"}) {
		t.Errorf("proxy removed: file still there %v, restarts %v", ok, g.restarted)
	}
}

func TestStopStartStatus(t *testing.T) {
	g := newFakeGuest(t)
	g.units["kube-proxy"] = "inactive"
	m := machineFor(g)
	sc := svcContext(t, g, m)
	s := New(Options{ReadyTimeout: 20 * time.Second})
	ctx := context.Background()
	if st, err := s.Status(ctx, sc); err != nil || st != services.StatusStopped {
		t.Errorf("status before: %v %v", st, err)
	}
	enable(t, s, sc)
	if st, err := s.Status(ctx, sc); err != nil || st != services.StatusRunning {
		t.Errorf("status after enable: %v %v", st, err)
	}
	g.reset()
	if err := s.Stop(ctx, sc); err != nil {
		t.Fatal(err)
	}
	want := []string{"kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"}
	if !slices.Equal(g.stopped, want) {
		t.Errorf("stopped %v, want %v", g.stopped, want)
	}
	if g.units["containerd"] != "active" {
		t.Errorf("stop stopped the container runtime")
	}
	if st, _ := s.Status(ctx, sc); st != services.StatusStopped {
		t.Errorf("status after stop: %v", st)
	}
	g.reset()
	if err := s.Start(ctx, sc); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.started, []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"}) {
		t.Errorf("started %v", g.started)
	}
	if g.readyzHits == 0 {
		t.Errorf("start did not wait for /readyz")
	}
	g.set(func(g *fakeGuest) { g.units = map[string]string{"docker": "active"} })
	if st, err := s.Status(ctx, sc); err != nil || st != services.StatusUnavailable {
		t.Errorf("status without kubernetes: %v %v", st, err)
	}
	if err := s.Stop(ctx, sc); dberr.ExitCode(err) != 126 {
		t.Errorf("stop without kubernetes: %v", err)
	}
}

func TestPortsAndName(t *testing.T) {
	s := New(Options{})
	if s.Name() != "kubernetes" {
		t.Errorf("name %q", s.Name())
	}
	if got := s.Ports(); len(got) != 1 || got[0].Name != "kubernetes" || got[0].GuestPort != 6443 {
		t.Errorf("ports %+v", got)
	}
}
