package insecurekey

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

// debianKeysGlob is where Debian's vagrant package puts Vagrant's keys.
const debianKeysGlob = "/usr/share/rubygems-integration/all/gems/vagrant-*/keys"

func writeKey(t *testing.T, dir, name string, keys ...any) []ssh.PublicKey {
	t.Helper()
	var data []byte
	var pubs []ssh.PublicKey
	for _, k := range keys {
		block, err := ssh.MarshalPrivateKey(k, "test")
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, pem.EncodeToMemory(block)...)
		s, err := ssh.NewSignerFromKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pubs = append(pubs, s.PublicKey())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return pubs
}

func newEd25519(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

func blobs(pubs []ssh.PublicKey) []string {
	out := make([]string, len(pubs))
	for i, p := range pubs {
		out[i] = string(p.Marshal())
	}
	slices.Sort(out)
	return out
}

func signerBlobs(signers []ssh.Signer) []string {
	pubs := make([]ssh.PublicKey, len(signers))
	for i, s := range signers {
		pubs[i] = s.PublicKey()
	}
	return blobs(pubs)
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestExplicitFileWins(t *testing.T) {
	dir := t.TempDir()
	want := writeKey(t, dir, "mykey", newEd25519(t))
	vagrantDir := filepath.Join(dir, "gems", "vagrant-9.9.9", "keys")
	writeKey(t, vagrantDir, "vagrant", newEd25519(t))

	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"option", Options{File: filepath.Join(dir, "mykey")}},
		{"env", Options{Getenv: env(map[string]string{EnvFile: filepath.Join(dir, "mykey")})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.VagrantKeyDirs = []string{filepath.Join(dir, "gems", "vagrant-*", "keys")}
			keys, err := Load(context.Background(), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(signerBlobs(keys.Signers), blobs(want)) {
				t.Fatalf("got other keys than the named file's")
			}
			if len(keys.Sources) != 1 || keys.Sources[0] != filepath.Join(dir, "mykey") {
				t.Fatalf("sources = %v", keys.Sources)
			}
		})
	}
}

func TestNamedFileProblemsDoNotFallBack(t *testing.T) {
	dir := t.TempDir()
	vagrantDir := filepath.Join(dir, "vagrant-1.0", "keys")
	writeKey(t, vagrantDir, "vagrant", newEd25519(t))
	dirs := []string{filepath.Join(dir, "vagrant-*", "keys")}

	// A legacy passphrase-protected PEM key: its headers say so, and the
	// parser stops there (a real OpenSSH-format one costs seconds of bcrypt
	// to make under the race detector).
	encrypted := &pem.Block{
		Type: "RSA PRIVATE KEY",
		Headers: map[string]string{
			"Proc-Type": "4,ENCRYPTED",
			"DEK-Info":  "AES-128-CBC,00112233445566778899AABBCCDDEEFF",
		},
		Bytes: make([]byte, 64),
	}
	encPath := filepath.Join(dir, "encrypted")
	if err := os.WriteFile(encPath, pem.EncodeToMemory(encrypted), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope"), "no such file"},
		{"encrypted", encPath, "passphrase-protected"},
		{"garbage", garbage, "no PEM private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(context.Background(), Options{
				Getenv:         env(map[string]string{EnvFile: tc.path}),
				VagrantKeyDirs: dirs,
			})
			if err == nil {
				t.Fatal("Load fell back to another key instead of failing")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, EnvFile) || !strings.Contains(msg, tc.path) {
				t.Fatalf("error %q should say %q and name %s and the path", msg, tc.want, EnvFile)
			}
			if !strings.Contains(dberr.Hint(err), EnvFile) {
				t.Fatalf("hint %q should say what to set", dberr.Hint(err))
			}
		})
	}
}

func TestVagrantInstallFoldersNewestFirstAndDeduplicated(t *testing.T) {
	dir := t.TempDir()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ed := newEd25519(t)
	// Old release: the RSA key only. New release: the same RSA key and an
	// ed25519 key, one of them in a file of two PEM blocks.
	old := filepath.Join(dir, "vagrant-2.2.19", "keys")
	writeKey(t, old, "vagrant", rsaKey)
	newer := filepath.Join(dir, "vagrant-2.4.1", "keys")
	writeKey(t, newer, "vagrant", rsaKey, ed)
	writeKey(t, newer, "vagrant.key.ed25519", ed)

	keys, err := Load(context.Background(), Options{
		Getenv:         env(nil),
		VagrantKeyDirs: []string{filepath.Join(dir, "vagrant-*", "keys")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys.Signers) != 2 {
		t.Fatalf("got %d signers, want the 2 distinct keys", len(keys.Signers))
	}
	if keys.Sources[0] != filepath.Join(newer, "vagrant") {
		t.Fatalf("sources %v: the newest release should come first", keys.Sources)
	}
	types := []string{keys.Signers[0].PublicKey().Type(), keys.Signers[1].PublicKey().Type()}
	slices.Sort(types)
	if !slices.Equal(types, []string{ssh.KeyAlgoED25519, ssh.KeyAlgoRSA}) {
		t.Fatalf("types %v", types)
	}
}

func TestNothingFoundListsEverythingTried(t *testing.T) {
	dir := t.TempDir()
	pattern := filepath.Join(dir, "vagrant-*", "keys")
	_, err := Load(context.Background(), Options{Getenv: env(nil), VagrantKeyDirs: []string{pattern}})
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{pattern, EnvURL} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	hint := dberr.Hint(err)
	for _, want := range []string{EnvFile, EnvURL, SuggestedURL} {
		if !strings.Contains(hint, want) {
			t.Errorf("hint %q does not mention %q", hint, want)
		}
	}
}

// requireDebianVagrant returns the real key file of Debian's vagrant
// package, skipping (failing under CI) when the package is missing.
func requireDebianVagrant(t *testing.T) string {
	t.Helper()
	matches, _ := filepath.Glob(filepath.Join(debianKeysGlob, "vagrant"))
	if len(matches) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Debian's vagrant package is not installed (no %s/vagrant): CI must `apt-get install -y vagrant`", debianKeysGlob)
		}
		t.Skipf("SKIPPED: Debian's vagrant package is not installed (no %s/vagrant); `apt-get install -y vagrant` to run this test", debianKeysGlob)
	}
	return matches[len(matches)-1]
}

func TestFindsDebianVagrantPackageKey(t *testing.T) {
	path := requireDebianVagrant(t)
	keys, err := Load(context.Background(), Options{
		Getenv: env(map[string]string{"HOME": t.TempDir()}),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(keys.Sources, path) {
		t.Fatalf("sources %v do not include %s", keys.Sources, path)
	}
	// The well-known RSA key: 2048 bits, and the file the pinned hash is of.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if _, ok := pinnedSHA256[hex.EncodeToString(sum[:])]; !ok {
		t.Errorf("Debian's %s no longer matches the pinned SHA-256", path)
	}
	if keys.Signers[0].PublicKey().Type() != ssh.KeyAlgoRSA {
		t.Errorf("key type %s, want RSA", keys.Signers[0].PublicKey().Type())
	}
}

func TestURLDownloadCheckedAgainstPinnedHash(t *testing.T) {
	realKey, err := os.ReadFile(requireDebianVagrant(t))
	if err != nil {
		t.Fatal(err)
	}
	tampered := append([]byte(nil), realKey...)
	tampered = append(tampered, '\n')

	mux := http.NewServeMux()
	mux.HandleFunc("/keys/vagrant", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(realKey) })
	mux.HandleFunc("/tampered/vagrant", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(tampered) })
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	load := func(u string) (*Keys, error) {
		return Load(context.Background(), Options{
			Getenv:         env(map[string]string{EnvURL: u}),
			VagrantKeyDirs: []string{},
			HTTPClient:     srv.Client(),
		})
	}

	keys, err := load(srv.URL + "/keys/vagrant")
	if err != nil {
		t.Fatal(err)
	}
	if keys.Sources[0] != srv.URL+"/keys/vagrant" || keys.Signers[0].PublicKey().Type() != ssh.KeyAlgoRSA {
		t.Fatalf("got %v", keys.Sources)
	}

	for _, tc := range []struct{ name, url, want string }{
		{"tampered", srv.URL + "/tampered/vagrant", "is not a pinned insecure key file"},
		{"not found", srv.URL + "/missing", "404"},
		{"plain http", strings.Replace(srv.URL, "https://", "http://", 1) + "/keys/vagrant", "only https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.url)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.url) {
				t.Fatalf("error %v should name %s and say %q", err, tc.url, tc.want)
			}
		})
	}
}

func TestDefaultVagrantKeyDirs(t *testing.T) {
	for _, tc := range []struct {
		goos string
		env  map[string]string
		want []string
	}{
		{"linux", map[string]string{"HOME": "/home/u"}, []string{
			"/home/u/.vagrant.d/insecure_private_keys",
			debianKeysGlob,
			"/opt/vagrant/embedded/gems/gems/vagrant-*/keys",
		}},
		{"darwin", map[string]string{"VAGRANT_HOME": "/v"}, []string{
			"/v/insecure_private_keys",
			"/opt/vagrant/embedded/gems/*/gems/vagrant-*/keys",
		}},
		{"windows", map[string]string{"USERPROFILE": `C:\Users\u`, "ProgramFiles": `D:\Programs`}, []string{
			`C:\Users\u\.vagrant.d\insecure_private_keys`,
			`C:\HashiCorp\Vagrant\embedded\gems\gems\vagrant-*\keys`,
			`D:\Programs\Vagrant\embedded\gems\*\gems\vagrant-*\keys`,
		}},
	} {
		t.Run(tc.goos, func(t *testing.T) {
			got := DefaultVagrantKeyDirs(tc.goos, env(tc.env))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("%v lacks %q", got, w)
				}
			}
		})
	}
}

func TestReadKeyFileRefusesHugeFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, maxKeyFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readKeyFile(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
	if _, err := readKeyFile(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
