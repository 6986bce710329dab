package testbox

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// recorder stands in for testing.TB to observe how a helper gives up.
type recorder struct {
	skipped, fatal string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skipf(format string, args ...any)  { r.skipped = fmt.Sprintf(format, args...) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = fmt.Sprintf(format, args...) }

func writeBox(t *testing.T, skip string) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{ImageFile, BoxFile, CatalogFile, KeyFile, MetadataFile, Vagrantfile, PubKeyFile} {
		if name == skip {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestDir(t *testing.T) {
	complete := writeBox(t, "")
	noKey := writeBox(t, KeyFile)
	tests := []struct {
		name      string
		ci        bool
		dir       string
		wantDir   string
		wantSkip  string
		wantFatal string
	}{
		{name: "complete build", dir: complete, wantDir: complete},
		{name: "complete build in CI", ci: true, dir: complete, wantDir: complete},
		{name: "unset skips loudly", wantSkip: "VM TEST SKIPPED: DEVBUNDLE_TESTBOX_DIR is not set"},
		{name: "unset fails in CI", ci: true, wantFatal: "CI=true: DEVBUNDLE_TESTBOX_DIR is not set"},
		{name: "missing key skips", dir: noKey, wantSkip: "not a complete test box build"},
		{name: "missing key fails in CI", ci: true, dir: noKey, wantFatal: KeyFile},
		{name: "missing folder fails in CI", ci: true, dir: filepath.Join(complete, "nope"), wantFatal: "not a complete test box build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			got := dir(r, tt.ci, tt.dir)
			if got != tt.wantDir {
				t.Errorf("dir() = %q, want %q", got, tt.wantDir)
			}
			check := func(kind, got, want string) {
				if want == "" && got != "" {
					t.Errorf("unexpected %s: %s", kind, got)
				}
				if want != "" && !strings.Contains(got, want) {
					t.Errorf("%s = %q, want it to contain %q", kind, got, want)
				}
			}
			check("skip", r.skipped, tt.wantSkip)
			check("fatal", r.fatal, tt.wantFatal)
			if (r.skipped != "" || r.fatal != "") && !strings.Contains(r.skipped+r.fatal, "tests/box/cached.sh") {
				t.Errorf("message %q does not say how to build the box", r.skipped+r.fatal)
			}
		})
	}
}

func TestFreePortIsBindable(t *testing.T) {
	port := FreePort(t)
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("FreePort() = %d, but binding it failed: %v", port, err)
	}
	l.Close()
}

func TestCatalogReplacesBaseURL(t *testing.T) {
	dir := t.TempDir()
	raw := `{"versions":[{"providers":[{"url":"{{BASE_URL}}/devbox.box"}]}]}`
	if err := os.WriteFile(filepath.Join(dir, CatalogFile), []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	got := string(Catalog(t, dir, "http://127.0.0.1:8080"))
	if want := `"url":"http://127.0.0.1:8080/devbox.box"`; !strings.Contains(got, want) {
		t.Errorf("Catalog() = %s, want it to contain %s", got, want)
	}

	if err := os.WriteFile(filepath.Join(dir, CatalogFile), []byte(`{"versions":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog(dir, "http://x"); err == nil || !strings.Contains(err.Error(), BaseURLPlaceholder) {
		t.Errorf("catalog() without placeholder: error %v, want one naming %s", err, BaseURLPlaceholder)
	}
}

func TestSignerReadsOpenSSHKey(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, KeyFile), pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	s := Signer(t, dir)
	if got := s.PublicKey().Type(); got != ssh.KeyAlgoED25519 {
		t.Errorf("key type %q, want %q", got, ssh.KeyAlgoED25519)
	}

	if err := os.WriteFile(filepath.Join(dir, KeyFile), []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := signer(dir); err == nil || !strings.Contains(err.Error(), KeyFile) {
		t.Errorf("signer() on garbage: error %v, want one naming the file", err)
	}
}
