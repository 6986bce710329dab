package cmdutil

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/devbundle/devbundle/internal/iostreams"
)

func TestBypassProxy(t *testing.T) {
	for _, tc := range []struct {
		host, noProxy string
		want          bool
	}{
		{"127.0.0.1", "", true},
		{"::1", "", true},
		{"localhost", "", true},
		{"dl.k8s.io", "", false},
		{"dl.k8s.io", "*", true},
		{"dl.k8s.io", "k8s.io", true},
		{"dl.k8s.io", ".k8s.io", true},
		{"k8s.io", ".k8s.io", true},
		{"notk8s.io", "k8s.io", false},
		{"mirror.corp", "other.corp, mirror.corp:443", true},
		{"10.1.2.3", "10.0.0.0/8", true},
		{"11.1.2.3", "10.0.0.0/8", false},
		{"192.168.1.5", "192.168.1.5", true},
		{"download.docker.com", "docker.io", false},
	} {
		if got := bypassProxy(tc.host, tc.noProxy); got != tc.want {
			t.Errorf("bypassProxy(%q, %q) = %v, want %v", tc.host, tc.noProxy, got, tc.want)
		}
	}
}

// The proxy from the user's config file carries every request to a remote
// host (the target is never contacted: the proxy, on this machine's
// loopback, answers), with the configured credentials; NO_PROXY and
// loopback targets go direct.
func TestHTTPClientUsesTheConfiguredProxy(t *testing.T) {
	var auth atomic.Value
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth.Store(r.Header.Get("Proxy-Authorization"))
		_, _ = io.WriteString(w, "via proxy "+r.URL.String())
	}))
	defer proxy.Close()
	direct := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "direct")
	}))
	defer direct.Close()

	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "proxy:\n  url: " + proxy.URL + "\n  user: alice\n  password: s3cret\n"
	if err := os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	streams, _, _, _ := iostreams.Test()
	f := New(streams, "test")
	env := map[string]string{"DEVBUNDLE_HOME": home, "NO_PROXY": "skip.example"}
	f.Getenv = func(k string) string { return env[k] }
	wd := t.TempDir()
	f.Getwd = func() (string, error) { return wd, nil }
	c := f.HTTPClient()

	get := func(url string) string {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if got := get("http://dl.k8s.example/release/stable.txt"); got != "via proxy http://dl.k8s.example/release/stable.txt" {
		t.Errorf("remote host: %q, want it through the proxy", got)
	}
	if a, _ := auth.Load().(string); a == "" {
		t.Errorf("no Proxy-Authorization sent for the configured user")
	}
	if got := get(direct.URL); got != "direct" {
		t.Errorf("loopback host: %q, want it direct", got)
	}
	// NO_PROXY: asked of the transport, so that no lookup leaves the host.
	req, _ := http.NewRequest(http.MethodGet, "http://mirror.skip.example/x", nil)
	if u, err := c.Transport.(*http.Transport).Proxy(req); u != nil || err != nil {
		t.Errorf("NO_PROXY host: proxy %v, %v; want none", u, err)
	}
}
