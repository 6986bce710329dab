package commands

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// kubectlMirrorServer serves a real program (this test binary, standing in
// for kubectl) at dl.k8s.io's layout for version, with its .sha256.
func kubectlMirrorServer(t *testing.T, version string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	exe := ""
	if runtime.GOOS == "windows" {
		exe = ".exe"
	}
	p := "/release/v" + version + "/bin/" + runtime.GOOS + "/" + runtime.GOARCH + "/kubectl" + exe
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		switch r.URL.Path {
		case p:
			_, _ = w.Write(data)
		case p + ".sha256":
			_, _ = w.Write([]byte(hex.EncodeToString(sum[:])))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestInstallCLI(t *testing.T) {
	srv, requests := kubectlMirrorServer(t, "1.20.2")
	f, out, errOut := testFactory(t, map[string]string{"DEVBUNDLE_MIRROR_KUBECTL": srv.URL, "PATH": "/usr/bin:/bin"})
	if code := run(t, f, "install-cli", "kubernetes", "--cli-version", "v1.20.2", "--shell", "bash"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	p, _ := f.Paths()
	dir := filepath.Join(p.Bin(), "kubectl", "1.20.2", runtime.GOOS+"-"+runtime.GOARCH)
	if !strings.Contains(out.String(), "export PATH='"+dir+string(os.PathListSeparator)+"/usr/bin") ||
		!strings.Contains(out.String(), `# eval "$(devbundle install-cli kubernetes --cli-version v1.20.2 --shell bash)"`) {
		t.Errorf("stdout:\n%s", out)
	}
	if !strings.Contains(errOut.String(), "downloading kubectl 1.20.2") || !strings.Contains(errOut.String(), "verified kubectl 1.20.2: sha256 from") {
		t.Errorf("stderr:\n%s", errOut)
	}
	first := out.String()
	before := requests.Load()
	out.Reset()
	if code := run(t, f, "install-cli", "kubernetes", "--cli-version", "v1.20.2", "--shell", "bash"); code != 0 || out.String() != first {
		t.Errorf("second run: exit %d, output\n%s\nwant\n%s", code, out, first)
	}
	if requests.Load() != before {
		t.Errorf("second run made %d requests", requests.Load()-before)
	}
}

func TestInstallCLIExitCodes(t *testing.T) {
	srv, _ := kubectlMirrorServer(t, "1.20.2")
	env := map[string]string{"DEVBUNDLE_MIRROR_KUBECTL": srv.URL}
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"install-cli", "kubernetes", "--cli-version", "1.99.0"}, env, 126, "not available"},
		{[]string{"install-cli", "kubernetes", "--cli-version", "1.20.2", "--path", filepath.Join(t.TempDir(), "nope")}, env, 126, "does not exist"},
		{[]string{"install-cli", "kubernetes"}, env, 3, "not running"},
		{[]string{"install-cli", "podman", "--cli-version", "1.0.0"}, env, 126, "unknown service"},
		{[]string{"install-cli", "kubernetes", "--cli-version", "1.20"}, env, 1, "not a full release number"},
		{[]string{"install-cli", "kubernetes", "--cli-version", "1.20.2"}, map[string]string{"DEVBUNDLE_MIRROR_KUBECTL": "mirror.example"}, 1, "DEVBUNDLE_MIRROR_KUBECTL"},
		{[]string{"install-cli"}, env, 1, "one service"},
	} {
		f, out, errOut := testFactory(t, tc.env)
		code := run(t, f, tc.args...)
		if code != tc.code || out.Len() != 0 || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("%v: exit %d (want %d), stdout %q, stderr %q (want %q)", tc.args, code, tc.code, out, errOut, tc.want)
		}
	}
}
