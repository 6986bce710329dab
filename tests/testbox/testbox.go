// Package testbox hands the end-to-end tests what they need to boot real
// VMs: the test box that tests/box builds, a connection to the host's
// libvirtd, free local ports and SSH to a booting guest.
//
// A test that cannot get one of these skips with a loud message on a
// developer's machine and fails when CI=true, so CI can never pass by
// skipping the VM tier.
package testbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"golang.org/x/crypto/ssh"
)

// EnvDir names the environment variable holding the folder of a built box
// (the output folder of tests/box/build.sh, as printed by tests/box/cached.sh).
const EnvDir = "DEVBUNDLE_TESTBOX_DIR"

// Files of a built box folder.
const (
	ImageFile    = "box.img"          // qcow2 disk, also inside BoxFile
	BoxFile      = "devbox.box"       // gzip'd tar: metadata.json, box.img, Vagrantfile
	CatalogFile  = "catalog.json"     // Vagrant catalog naming BoxFile by a templated URL
	KeyFile      = "insecure_key"     // private half of the key the box authorizes for vagrant
	MetadataFile = "metadata.json"    // libvirt provider metadata, also inside BoxFile
	Vagrantfile  = "Vagrantfile"      // the box's own Vagrantfile, also inside BoxFile
	PubKeyFile   = "insecure_key.pub" // public half of KeyFile
)

// BaseURLPlaceholder stands in catalog.json for the address of the HTTP
// server a test serves the box folder from.
const BaseURLPlaceholder = "{{BASE_URL}}"

// BoxName is the name catalog.json gives the box.
const BoxName = "devbundle/devbox"

// User is the account the box authorizes KeyFile for.
const User = "vagrant"

// SystemSocket is the unix socket of the host's libvirtd (qemu:///system).
const SystemSocket = "/var/run/libvirt/libvirt-sock"

const setupHint = "run .ci/setup-vm-host.sh, then DEVBUNDLE_TESTBOX_DIR=$(tests/box/cached.sh) go test -tags e2e -p 1 ./tests/..."

// tb is the part of testing.TB this package needs to give up on a test.
type tb interface {
	Helper()
	Skipf(format string, args ...any)
	Fatalf(format string, args ...any)
}

// unavailable ends the test because the VM tier cannot run here: t.Fatal in
// CI (a skipped tier must not look like a pass), t.Skip elsewhere, with the
// reason also written to stderr so it shows without -v.
func unavailable(t tb, ci bool, reason string) {
	t.Helper()
	if ci {
		t.Fatalf("VM test tier cannot run with CI=true: %s; %s", reason, setupHint)
		return
	}
	msg := fmt.Sprintf("!!! VM TEST SKIPPED: %s; %s", reason, setupHint)
	fmt.Fprintln(os.Stderr, msg)
	t.Skipf("%s", msg)
}

// InCI reports whether the CI environment variable is set to true.
func InCI() bool {
	ci, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && ci
}

// Dir returns the folder of the built test box named by
// DEVBUNDLE_TESTBOX_DIR after checking it holds every file of a build.
func Dir(t testing.TB) string {
	t.Helper()
	return dir(t, InCI(), os.Getenv(EnvDir))
}

func dir(t tb, ci bool, dir string) string {
	t.Helper()
	return checkDir(t, ci, EnvDir, dir, "", boxFiles)
}

// boxFiles are the files every build of tests/box/build.sh holds.
var boxFiles = []string{ImageFile, BoxFile, CatalogFile, KeyFile, MetadataFile, Vagrantfile, PubKeyFile}

// checkDir returns dir, the value of the environment variable env, after
// checking it holds every one of files; otherwise the test ends (unavailable).
// cachedArgs are the arguments of tests/box/cached.sh that build this box.
func checkDir(t tb, ci bool, env, dir, cachedArgs string, files []string) string {
	t.Helper()
	if dir == "" {
		reason := env + " is not set"
		if cachedArgs != "" {
			reason += fmt.Sprintf(" (%s=$(tests/box/cached.sh %s))", env, cachedArgs)
		}
		unavailable(t, ci, reason)
		return ""
	}
	var problems []error
	for _, name := range files {
		info, err := os.Stat(filepath.Join(dir, name))
		switch {
		case err != nil:
			problems = append(problems, err)
		case !info.Mode().IsRegular() || info.Size() == 0:
			problems = append(problems, fmt.Errorf("%q is empty or not a regular file", filepath.Join(dir, name)))
		}
	}
	if len(problems) > 0 {
		unavailable(t, ci, fmt.Sprintf("%s=%q is not a complete test box build: %v", env, dir, errors.Join(problems...)))
		return ""
	}
	return dir
}

// Connect returns a connection to the host's libvirtd (qemu:///system over
// its unix socket), closed when the test ends.
func Connect(t testing.TB) *libvirt.Libvirt {
	t.Helper()
	l := libvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(SystemSocket), dialers.WithLocalTimeout(5*time.Second)))
	if err := l.ConnectToURI(libvirt.QEMUSystem); err != nil {
		unavailable(t, InCI(), fmt.Sprintf("libvirtd is unreachable at %q: %v", SystemSocket, err))
		return nil
	}
	t.Cleanup(func() {
		if err := l.Disconnect(); err != nil {
			t.Logf("disconnecting from libvirtd: %v", err)
		}
	})
	return l
}

// FreePort returns a TCP port on 127.0.0.1 that nothing listened on a moment
// ago. Another process may take it before the caller binds it; tests use it
// for forwards they create right away.
func FreePort(t testing.TB) int {
	t.Helper()
	port, err := freePort(t.Context())
	if err != nil {
		t.Fatalf("finding a free port on 127.0.0.1: %v", err)
	}
	return port
}

func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listening on 127.0.0.1:0: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("closing the probe listener: %w", err)
	}
	return port, nil
}

// Signer returns the box's insecure private key from dir as an SSH signer.
func Signer(t testing.TB, dir string) ssh.Signer {
	t.Helper()
	signer, err := signer(dir)
	if err != nil {
		t.Fatal(err)
	}
	return signer
}

func signer(dir string) (ssh.Signer, error) {
	path := filepath.Join(dir, KeyFile)
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the box's insecure key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parsing the box's insecure key %q: %w", path, err)
	}
	return s, nil
}

// Catalog returns the box's catalog.json with its URLs pointing at baseURL
// (for example an httptest server serving dir), without a trailing slash.
func Catalog(t testing.TB, dir, baseURL string) []byte {
	t.Helper()
	data, err := catalog(dir, baseURL)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func catalog(dir, baseURL string) ([]byte, error) {
	path := filepath.Join(dir, CatalogFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the box catalog: %w", err)
	}
	if !bytes.Contains(data, []byte(BaseURLPlaceholder)) {
		return nil, fmt.Errorf("box catalog %q has no %s to replace; rebuild the box with tests/box/cached.sh", path, BaseURLPlaceholder)
	}
	return bytes.ReplaceAll(data, []byte(BaseURLPlaceholder), []byte(baseURL)), nil
}
