package kubeapi

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devbundle/devbundle/services/kubernetes/kubetest"
)

func TestParseAdminWithFileReferences(t *testing.T) {
	a, err := ParseAdmin([]byte(`apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://10.0.2.15:6443
    certificate-authority: /etc/kubernetes/ca.crt
users:
- name: admin
  user:
    client-certificate: /etc/kubernetes/admin.crt
    client-key: /etc/kubernetes/admin.key
contexts:
- name: local
  context: {cluster: local, user: admin}
current-context: local
`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Server != "https://10.0.2.15:6443" || strings.Join(a.Missing(), ",") != "/etc/kubernetes/ca.crt,/etc/kubernetes/admin.crt,/etc/kubernetes/admin.key" {
		t.Fatalf("%+v %v", a, a.Missing())
	}
	p := kubetest.NewPKI(t, "127.0.0.1")
	c, err := a.Resolve(map[string][]byte{"/etc/kubernetes/ca.crt": p.CAPEM, "/etc/kubernetes/admin.crt": p.ClientPEM, "/etc/kubernetes/admin.key": p.ClientKeyPEM})
	if err != nil || string(c.CA) != string(p.CAPEM) {
		t.Fatalf("resolve: %v", err)
	}
	if _, err := a.Resolve(map[string][]byte{"/etc/kubernetes/ca.crt": p.CAPEM}); err == nil || !strings.Contains(err.Error(), "admin.crt") {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseAdminRefusesBrokenConfigs(t *testing.T) {
	for name, doc := range map[string]string{
		"not yaml":       "{{",
		"no context":     "apiVersion: v1\ncurrent-context: x\n",
		"unknown user":   "contexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: https://x}\ncurrent-context: a\n",
		"bad base64 key": "contexts:\n- name: a\n  context: {cluster: c, user: u}\nclusters:\n- name: c\n  cluster: {server: https://x}\nusers:\n- name: u\n  user: {client-key-data: '!!'}\ncurrent-context: a\n",
	} {
		if _, err := ParseAdmin([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

func TestRenderLoadRoundTripAndNoSkip(t *testing.T) {
	p := kubetest.NewPKI(t, "127.0.0.1")
	e := Endpoint{Server: "https://127.0.0.1:1234", ServerName: "kubernetes",
		Credentials: Credentials{CA: p.CAPEM, ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}}
	data, err := Render(e, NamesFor("devbundle", "dev box"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "insecure") {
		t.Errorf("rendered:\n%s", data)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Server != e.Server || got.ServerName != "kubernetes" || string(got.CA) != string(p.CAPEM) || string(got.ClientKey) != string(p.ClientKeyPEM) {
		t.Errorf("round trip: %+v", got)
	}
	skip := strings.Replace(string(data), "certificate-authority-data:", "insecure-skip-tls-verify: true\n      certificate-authority-data:", 1)
	if err := os.WriteFile(path, []byte(skip), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "skips TLS verification") {
		t.Errorf("load of a skipping kubeconfig: %v", err)
	}
	if _, err := Render(Endpoint{Server: e.Server, Credentials: Credentials{ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}}, Names{}); err == nil {
		t.Errorf("rendered without a CA")
	}
}

func TestWaitReadyRetriesThenFallsBackToHealthz(t *testing.T) {
	p := kubetest.NewPKI(t, "localhost") // no 127.0.0.1: the name is resolved
	var ready atomic.Bool
	port := p.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz":
			http.NotFound(w, r) // an old server
		case r.URL.Path == "/healthz" && ready.Load():
			_, _ = w.Write([]byte("ok"))
		default:
			http.Error(w, "etcd not ready", http.StatusInternalServerError)
		}
	}))
	time.AfterFunc(700*time.Millisecond, func() { ready.Store(true) })
	e := Endpoint{Server: "https://127.0.0.1:" + strconv.Itoa(port), Credentials: Credentials{CA: p.CAPEM, ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}}
	got, err := WaitReady(context.Background(), e, WaitOptions{Timeout: 20 * time.Second, What: "test server"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ServerName != "localhost" {
		t.Errorf("server name %q, want localhost", got.ServerName)
	}
}

func TestWaitReadyTimesOutAndHonoursCancel(t *testing.T) {
	p := kubetest.NewPKI(t, "127.0.0.1")
	port := p.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "[-]etcd failed", http.StatusInternalServerError)
	}))
	e := Endpoint{Server: "https://127.0.0.1:" + strconv.Itoa(port), Credentials: Credentials{CA: p.CAPEM, ClientCert: p.ClientPEM, ClientKey: p.ClientKeyPEM}}
	_, err := WaitReady(context.Background(), e, WaitOptions{Timeout: time.Second, What: "test server"})
	var te *TimeoutError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "etcd failed") {
		t.Errorf("timeout: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err = WaitReady(ctx, e, WaitOptions{Timeout: time.Minute, What: "test server"})
	if !errors.Is(err, context.Canceled) || errors.As(err, &te) {
		t.Errorf("cancel: %v", err)
	}
}

func TestWaitReadyRefusesAForeignServerAtOnce(t *testing.T) {
	server := kubetest.NewPKI(t, "127.0.0.1")
	client := kubetest.NewPKI(t, "127.0.0.1")
	port := server.Serve(t, http.NotFoundHandler())
	e := Endpoint{Server: "https://127.0.0.1:" + strconv.Itoa(port), Credentials: Credentials{CA: client.CAPEM, ClientCert: client.ClientPEM, ClientKey: client.ClientKeyPEM}}
	start := time.Now()
	_, err := WaitReady(context.Background(), e, WaitOptions{Timeout: time.Minute, What: "test server"})
	var ce *CertificateError
	if !errors.As(err, &ce) || time.Since(start) > 10*time.Second {
		t.Errorf("foreign CA: %v after %s", err, time.Since(start))
	}
}
