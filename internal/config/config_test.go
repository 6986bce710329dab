package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestProjectFileFoundInParent(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, ProjectFile), "box: devbundle/devbox\ncpus: 4\n")
	deep := filepath.Join(root, "a", "b", "c")
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, src, err := Load(LoadOptions{Dir: deep})
	if err != nil {
		t.Fatal(err)
	}
	if src.Project != filepath.Join(root, ProjectFile) {
		t.Errorf("project file %q", src.Project)
	}
	if cfg.Box != "devbundle/devbox" || cfg.CPUs != 4 {
		t.Errorf("got %+v", cfg)
	}
}

func TestProjectOverridesUser(t *testing.T) {
	dir := t.TempDir()
	user := filepath.Join(dir, "user", "config.yaml")
	write(t, user, "cpus: 3\nmemory: 4096\nproxy:\n  url: http://proxy.local:3128\n")
	write(t, filepath.Join(dir, "proj", ProjectFile), "cpus: 1\nservices: \"docker, Kubernetes\"\n")
	cfg, src, err := Load(LoadOptions{UserFile: user, Dir: filepath.Join(dir, "proj")})
	if err != nil {
		t.Fatal(err)
	}
	if src.User != user {
		t.Errorf("user source %q", src.User)
	}
	if cfg.CPUs != 1 || cfg.Memory != 4096 || cfg.Proxy.URL != "http://proxy.local:3128" {
		t.Errorf("merge wrong: %+v", cfg)
	}
	if strings.Join(cfg.Services, ",") != "docker,kubernetes" {
		t.Errorf("services %q", cfg.Services)
	}
	if err := cfg.Finish(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg := &Config{}
	if err := cfg.Finish(); err != nil {
		t.Fatal(err)
	}
	if cfg.Box != DefaultBox || cfg.CPUs != 2 || cfg.Memory != 2048 || cfg.Accel != "auto" ||
		len(cfg.Services) != 1 || cfg.Services[0] != "docker" || cfg.Libvirt.URI != "qemu:///system" || cfg.Libvirt.Network != "user" {
		t.Errorf("defaults: %+v", cfg)
	}
}

func TestEmptyServicesListStaysEmpty(t *testing.T) {
	cfg := &Config{}
	if err := Decode([]byte("services: []\n"), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.FillDefaults()
	if len(cfg.Services) != 0 {
		t.Errorf("an explicit empty list must mean no services, got %q", cfg.Services)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	cfg := &Config{}
	if err := Decode([]byte(`
provider: hyperv
cpus: -1
memory: 12
disk: -5
accel: turbo
services: [docker, kubernetes, openshift, podman]
proxy:
  url: "ftp://x"
libvirt:
  network: bridge
virtualbox:
  host_only_adapter: vboxnet0
  host_only_network: HostNetwork
box_server: "not a url"
`), cfg); err != nil {
		t.Fatal(err)
	}
	cfg.FillDefaults()
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	msg := err.Error()
	for _, field := range []string{"provider:", "cpus:", "memory:", "disk:", "accel:", `services: "podman"`, "exclude each other", "proxy.url:", "libvirt.network:", "virtualbox: host_only_adapter and host_only_network", "box_server:"} {
		if !strings.Contains(msg, field) {
			t.Errorf("error lacks %q:\n%s", field, msg)
		}
	}
}

func TestUnknownFieldRefused(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, ProjectFile), "box: x\ncpu: 2\n")
	_, _, err := Load(LoadOptions{Dir: dir})
	if err == nil || !strings.Contains(err.Error(), "cpu") || !strings.Contains(err.Error(), ProjectFile) {
		t.Fatalf("typo not reported with file and field: %v", err)
	}
}

func TestExplicitMissingProjectFile(t *testing.T) {
	_, _, err := Load(LoadOptions{ProjectFile: filepath.Join(t.TempDir(), "nope.yaml")})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("got %v", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("box: a/b\nservices: docker\n"))
	f.Add([]byte("services: [docker, openshift]\nproxy: {url: http://x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := &Config{}
		if err := Decode(data, cfg); err != nil {
			return
		}
		cfg.FillDefaults()
		_ = cfg.Validate()
	})
}

func TestProxyURL(t *testing.T) {
	c := &Config{Proxy: Proxy{URL: "http://proxy.local:3128", User: "me", Password: "p@ss:w/rd"}}
	if got := c.ProxyURL(); got != "http://me:p%40ss%3Aw%2Frd@proxy.local:3128" {
		t.Errorf("ProxyURL = %q", got)
	}
	c.Proxy.Password = ""
	if got := c.ProxyURL(); got != "http://me@proxy.local:3128" {
		t.Errorf("ProxyURL without password = %q", got)
	}
	if (&Config{}).ProxyURL() != "" {
		t.Errorf("no proxy must give empty")
	}
}
