package clibins

import (
	"errors"
	"strings"
	"testing"

	"github.com/devbundle/devbundle/internal/config"
	"github.com/devbundle/devbundle/internal/dberr"
)

// The official URL layouts of REFERENCE.md §5, for every platform.
func TestLayouts(t *testing.T) {
	type want struct{ url, sum string }
	none := want{}
	platforms := []Platform{
		{"linux", "amd64"}, {"linux", "arm64"}, {"darwin", "amd64"},
		{"darwin", "arm64"}, {"windows", "amd64"}, {"windows", "arm64"},
	}
	cases := []struct {
		service, version, base string
		want                   []want // one per platform, in order
	}{
		{"kubernetes", "1.28.3", officialKubectl, []want{
			{"https://dl.k8s.io/release/v1.28.3/bin/linux/amd64/kubectl", "https://dl.k8s.io/release/v1.28.3/bin/linux/amd64/kubectl.sha256"},
			{"https://dl.k8s.io/release/v1.28.3/bin/linux/arm64/kubectl", "https://dl.k8s.io/release/v1.28.3/bin/linux/arm64/kubectl.sha256"},
			{"https://dl.k8s.io/release/v1.28.3/bin/darwin/amd64/kubectl", "https://dl.k8s.io/release/v1.28.3/bin/darwin/amd64/kubectl.sha256"},
			{"https://dl.k8s.io/release/v1.28.3/bin/darwin/arm64/kubectl", "https://dl.k8s.io/release/v1.28.3/bin/darwin/arm64/kubectl.sha256"},
			{"https://dl.k8s.io/release/v1.28.3/bin/windows/amd64/kubectl.exe", "https://dl.k8s.io/release/v1.28.3/bin/windows/amd64/kubectl.exe.sha256"},
			{"https://dl.k8s.io/release/v1.28.3/bin/windows/arm64/kubectl.exe", "https://dl.k8s.io/release/v1.28.3/bin/windows/arm64/kubectl.exe.sha256"},
		}},
		{"openshift", "4.14.3", officialOC4, []want{
			{"https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/openshift-client-linux.tar.gz", "https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/sha256sum.txt"},
			{"https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/openshift-client-linux-arm64.tar.gz", "https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/sha256sum.txt"},
			{"https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/openshift-client-mac.tar.gz", "https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/sha256sum.txt"},
			{"https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/openshift-client-mac-arm64.tar.gz", "https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/sha256sum.txt"},
			{"https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/openshift-client-windows.zip", "https://mirror.openshift.com/pub/openshift-v4/clients/ocp/4.14.3/sha256sum.txt"},
			none,
		}},
		// oc 3.x: the folder; the file name comes from CHECKSUM.
		{"openshift", "3.11.0", officialOC3, []want{
			{"https://github.com/openshift/origin/releases/download/v3.11.0/", "https://github.com/openshift/origin/releases/download/v3.11.0/CHECKSUM"},
			none,
			{"https://github.com/openshift/origin/releases/download/v3.11.0/", "https://github.com/openshift/origin/releases/download/v3.11.0/CHECKSUM"},
			none,
			{"https://github.com/openshift/origin/releases/download/v3.11.0/", "https://github.com/openshift/origin/releases/download/v3.11.0/CHECKSUM"},
			none,
		}},
		{"docker", "20.10.24", officialDocker, []want{
			{"https://download.docker.com/linux/static/stable/x86_64/docker-20.10.24.tgz", ""},
			{"https://download.docker.com/linux/static/stable/aarch64/docker-20.10.24.tgz", ""},
			{"https://download.docker.com/mac/static/stable/x86_64/docker-20.10.24.tgz", ""},
			{"https://download.docker.com/mac/static/stable/aarch64/docker-20.10.24.tgz", ""},
			{"https://download.docker.com/win/static/stable/x86_64/docker-20.10.24.zip", ""},
			none,
		}},
		{"docker", "17.03.0", officialDocker, []want{
			{"https://download.docker.com/linux/static/stable/x86_64/docker-17.03.0-ce.tgz", ""},
			{"https://download.docker.com/linux/static/stable/aarch64/docker-17.03.0-ce.tgz", ""},
			{"https://download.docker.com/mac/static/stable/x86_64/docker-17.03.0-ce.tgz", ""},
			{"https://download.docker.com/mac/static/stable/aarch64/docker-17.03.0-ce.tgz", ""},
			{"https://download.docker.com/win/static/stable/x86_64/docker-17.03.0-ce.zip", ""},
			none,
		}},
		// A mirror keeps the official path below its base.
		{"kubernetes", "1.20.2", "https://mirror.corp.example/k8s", []want{
			{"https://mirror.corp.example/k8s/release/v1.20.2/bin/linux/amd64/kubectl", "https://mirror.corp.example/k8s/release/v1.20.2/bin/linux/amd64/kubectl.sha256"},
		}},
	}
	for _, tc := range cases {
		c := mustClient(t, tc.service)
		v, err := parseVersion(tc.version)
		if err != nil {
			t.Fatal(err)
		}
		for i, w := range tc.want {
			p := platforms[i]
			a, err := layout(c, tc.base, v, p, nil)
			if w == none {
				if !errors.Is(err, dberr.ErrServiceUnavailable) || !strings.Contains(err.Error(), "not published for "+p.String()) {
					t.Errorf("%s %s %s: %+v, %v; want a no-build error", c.Name, tc.version, p, a, err)
				}
				continue
			}
			if err != nil || a.url != w.url || a.sumURL != w.sum {
				t.Errorf("%s %s %s:\n got %q %q %v\nwant %q %q", c.Name, tc.version, p, a.url, a.sumURL, err, w.url, w.sum)
			}
		}
	}
	if _, err := layout(mustClient(t, "openshift"), officialOC4, version{major: 2, text: "2.0.0"}, platforms[0], nil); !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Errorf("oc 2.x: %v", err)
	}
}

func TestForService(t *testing.T) {
	for svc, name := range map[string]string{"docker": "docker", "kubernetes": "kubectl", "openshift": "oc"} {
		c, err := ForService(svc)
		if err != nil || c.Name != name || c.MirrorEnv != "DEVBUNDLE_MIRROR_"+strings.ToUpper(name) {
			t.Errorf("ForService(%q) = %+v, %v", svc, c, err)
		}
	}
	if _, err := ForService("podman"); !errors.Is(err, dberr.ErrServiceUnavailable) {
		t.Errorf("unknown service: %v, want exit 126", err)
	}
	if b := mustClient(t, "openshift").Binary(Platform{"windows", "arm64"}); b != "oc.exe" {
		t.Errorf("windows binary name %q", b)
	}
}

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"20.10.24+dfsg1": "20.10.24", "v1.28.3": "1.28.3", "1.28.3": "1.28.3", "v1.28.3+k3s1": "1.28.3",
		"17.03.0-ce": "17.03.0", "v1.30.0-rc.1": "1.30.0-rc.1", " 4.14.3\n": "4.14.3",
	} {
		if got, err := Canonical(in); err != nil || got != want {
			t.Errorf("Canonical(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "1.28", "latest", "1.28.3/../../x", "../1.2.3", "1.2.3 rm", "v", "1.2.3.4"} {
		if got, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%q) = %q, want an error", bad, got)
		}
	}
}

func TestParseClientVersion(t *testing.T) {
	for _, tc := range []struct{ name, out, want string }{
		{"docker", "Docker version 20.10.24+dfsg1, build 297e128\n", "20.10.24"},
		{"docker", "Docker version 28.2.2, build e6534b4\n", "28.2.2"},
		{"docker", "Docker version 17.03.0-ce, build 3a232c8\n", "17.03.0"},
		{"kubectl", `{"clientVersion":{"major":"1","minor":"20","gitVersion":"v1.20.2"}}`, "1.20.2"},
		{"kubectl", `{"clientVersion":{"gitVersion":"v1.32.4-dispatcher"},"kustomizeVersion":"v5.5.0"}`, "1.32.4"},
		{"oc", "Client Version: 4.14.3\nKustomize Version: v5.0.1\n", "4.14.3"},
		{"oc", "oc v3.11.0+0cbc58b\nkubernetes v1.11.0+d4cacc0\nfeatures: Basic-Auth GSSAPI Kerberos SPNEGO\n", "3.11.0"},
	} {
		got, err := parseClientVersion(tc.name, []byte(tc.out))
		if err != nil || got != tc.want {
			t.Errorf("parseClientVersion(%s, %q) = %q, %v; want %q", tc.name, tc.out, got, err, tc.want)
		}
	}
	for name, out := range map[string]string{"docker": "podman version 4.3.1", "kubectl": "error: unknown flag", "oc": ""} {
		if got, err := parseClientVersion(name, []byte(out)); err == nil {
			t.Errorf("parseClientVersion(%s, %q) = %q, want an error", name, out, got)
		}
	}
}

func TestParseSumList(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("B", 64)
	got, err := parseSumList([]byte(a + "  openshift-client-linux.tar.gz\n" + b + " *openshift-client-windows.zip\n\n"))
	if err != nil || got["openshift-client-linux.tar.gz"] != a || got["openshift-client-windows.zip"] != strings.ToLower(b) {
		t.Errorf("parseSumList: %v, %v", got, err)
	}
	for _, bad := range []string{"", "<html>", "abc  file\n", a} {
		if _, err := parseSumList([]byte(bad)); err == nil {
			t.Errorf("parseSumList(%q): no error", bad)
		}
	}
}

func TestPrependPath(t *testing.T) {
	for _, tc := range []struct{ dir, path, want string }{
		{"/c/bin", "/usr/bin:/bin", "/c/bin:/usr/bin:/bin"},
		{"/c/bin", "/usr/bin:/c/bin:/bin", "/c/bin:/usr/bin:/bin"},
		{"/c/bin", "/c/bin/:/usr/bin::/bin", "/c/bin:/usr/bin:/bin"},
		{"/c/bin", "", "/c/bin"},
	} {
		if got := PrependPath(tc.dir, tc.path, ':'); got != tc.want {
			t.Errorf("PrependPath(%q, %q) = %q, want %q", tc.dir, tc.path, got, tc.want)
		}
	}
	if got := PrependPath(`C:\db\bin`, `C:\Windows;C:\db\bin`, ';'); got != `C:\db\bin;C:\Windows` {
		t.Errorf("windows list: %q", got)
	}
}

func TestMirror(t *testing.T) {
	c := mustClient(t, "docker")
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if m, err := Mirror(c, getenv, mirrorsOf("https://cfg.example/docker/")); err != nil || m != "https://cfg.example/docker" {
		t.Errorf("config mirror: %q %v", m, err)
	}
	env["DEVBUNDLE_MIRROR_DOCKER"] = "http://127.0.0.1:8080/d"
	if m, err := Mirror(c, getenv, mirrorsOf("https://cfg.example/docker")); err != nil || m != "http://127.0.0.1:8080/d" {
		t.Errorf("environment over config: %q %v", m, err)
	}
	env["DEVBUNDLE_MIRROR_DOCKER"] = "ftp://x"
	if _, err := Mirror(c, getenv, mirrorsOf("")); !errors.Is(err, dberr.ErrUsage) || !strings.Contains(err.Error(), "DEVBUNDLE_MIRROR_DOCKER") {
		t.Errorf("bad mirror: %v", err)
	}
	delete(env, "DEVBUNDLE_MIRROR_DOCKER")
	if m, err := Mirror(c, getenv, mirrorsOf("")); err != nil || m != "" {
		t.Errorf("no mirror: %q %v", m, err)
	}
}

func mirrorsOf(docker string) config.Mirrors { return config.Mirrors{Docker: docker} }
