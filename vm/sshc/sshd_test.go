//go:build linux

package sshc

// A harness that runs Debian's real OpenSSH sshd on 127.0.0.1 for the
// tests in this package. It needs Linux, root (to run sshd and to log in
// as a separate user) and /usr/sbin/sshd; without them the tests skip
// loudly, or fail when CI=true.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/filelock"
)

const (
	sshdPath = "/usr/sbin/sshd"
	// testUser is a dedicated account the tests log in as. It is created
	// once, with no password and no valid shell password hash ("*", which
	// sshd does not treat as locked), and its home is pointed at a fresh
	// folder by each test.
	testUser = "dbtest"
	// testUserLock serialises the tests (of any process) that move
	// testUser's home.
	testUserLock = "/tmp/devbundle-sshc-dbtest.lock"
)

// requireSSHD skips the test (fails it under CI=true) when a real sshd
// cannot be run here.
func requireSSHD(t *testing.T) {
	t.Helper()
	why := ""
	switch {
	case runtime.GOOS != "linux":
		t.Skipf("SKIPPED: the real-sshd tests run on Linux only (this is %s)", runtime.GOOS)
	case os.Geteuid() != 0:
		why = "they need root (to run sshd and log in as the test user " + testUser + ")"
	default:
		if _, err := os.Stat(sshdPath); err != nil {
			why = sshdPath + " is missing: apt-get install -y openssh-server"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("real-sshd tests cannot run: %s", why)
	}
	t.Skipf("SKIPPED real-sshd test: %s", why)
}

var sshdVersionPattern = regexp.MustCompile(`OpenSSH_(\d+)\.(\d+)`)

// sshdVersion returns OpenSSH's major and minor version.
func sshdVersion(t *testing.T) (int, int) {
	t.Helper()
	out, _ := exec.Command(sshdPath, "-V").CombinedOutput()
	m := sshdVersionPattern.FindSubmatch(out)
	if m == nil {
		t.Fatalf("cannot read the sshd version from %q", out)
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	return major, minor
}

// lockedBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testHome is the test user's home for one test.
type testHome struct {
	dir      string
	uid, gid int
}

// sshdConfig describes one sshd instance.
type sshdConfig struct {
	port     int
	hostKeys []string // private host key files
	// authorizedKeysFile overrides sshd's AuthorizedKeysFile (default
	// .ssh/authorized_keys in the user's home).
	authorizedKeysFile string
	// allowUser is the only user allowed in (default testUser).
	allowUser string
}

type testSSHD struct {
	t    *testing.T
	cfg  sshdConfig
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// logText is what sshd has logged so far.
func (s *testSSHD) logText() string {
	data, _ := os.ReadFile(s.log)
	return string(data)
}

// setupTestUser makes sure testUser exists, points its home at a fresh
// folder for this test, and returns that home. It holds a lock for the
// test's duration.
func setupTestUser(t *testing.T) *testHome {
	t.Helper()
	requireSSHD(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	unlock, err := filelock.Lock(ctx, testUserLock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unlock() })

	if err := exec.Command("id", "-u", testUser).Run(); err != nil {
		out, err := exec.Command("useradd", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/bin/sh", "--password", "*", testUser).CombinedOutput()
		if err != nil {
			t.Fatalf("create the test user %s: %v: %s", testUser, err, out)
		}
	}
	// World-traversable parent (t.TempDir's folders are 0700 root).
	dir, err := os.MkdirTemp("", "devbundle-sshc-home-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var lastOut []byte
	for i := 0; ; i++ {
		out, err := exec.Command("usermod", "--home", dir, "--password", "*", testUser).CombinedOutput()
		if err == nil {
			break
		}
		lastOut = out
		if i == 20 {
			t.Fatalf("point %s's home at %s: %v: %s", testUser, dir, err, lastOut)
		}
		// usermod refuses while a process of the user is still running
		// (a session of an earlier test ending).
		time.Sleep(100 * time.Millisecond)
	}
	uid, gid := lookupIDs(t, testUser)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &testHome{dir: dir, uid: uid, gid: gid}
}

func lookupIDs(t *testing.T, user string) (int, int) {
	t.Helper()
	ids := [2]int{}
	for i, flag := range []string{"-u", "-g"} {
		out, err := exec.Command("id", flag, user).Output()
		if err != nil {
			t.Fatalf("id %s %s: %v", flag, user, err)
		}
		ids[i], err = strconv.Atoi(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids[0], ids[1]
}

// authorize writes the user's ~/.ssh/authorized_keys with extra raw lines
// followed by keys.
func (h *testHome) authorize(t *testing.T, extra string, keys ...ssh.PublicKey) {
	t.Helper()
	var b strings.Builder
	b.WriteString(extra)
	for _, k := range keys {
		b.WriteString(AuthorizedKeyLine(k, "vagrant insecure public key"))
	}
	sshDir := filepath.Join(h.dir, ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(sshDir, "authorized_keys")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{sshDir, p} {
		if err := os.Chown(f, h.uid, h.gid); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *testHome) authorizedKeysPath() string {
	return filepath.Join(h.dir, ".ssh", "authorized_keys")
}

// newHostKey writes a fresh ed25519 host key file for sshd and returns its
// path and public key.
func newHostKey(t *testing.T, dir string) (string, ssh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return writeHostKey(t, dir, priv)
}

func writeHostKey(t *testing.T, dir string, priv any) (string, ssh.PublicKey) {
	t.Helper()
	block, err := ssh.MarshalPrivateKey(priv, "test host key")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(dir, "hostkey-")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return f.Name(), signer.PublicKey()
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD starts sshd with cfg and waits until it listens. It is stopped
// when the test ends, if not before.
func startSSHD(t *testing.T, cfg sshdConfig) *testSSHD {
	t.Helper()
	requireSSHD(t)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { // privilege separation folder
		t.Fatal(err)
	}
	if cfg.allowUser == "" {
		cfg.allowUser = testUser
	}
	if cfg.authorizedKeysFile == "" {
		cfg.authorizedKeysFile = ".ssh/authorized_keys"
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "Port %d\nListenAddress 127.0.0.1\n", cfg.port)
	for _, k := range cfg.hostKeys {
		fmt.Fprintf(&conf, "HostKey %s\n", k)
	}
	fmt.Fprintf(&conf, "AuthorizedKeysFile %s\nAllowUsers %s\n", cfg.authorizedKeysFile, cfg.allowUser)
	conf.WriteString("StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n" +
		"PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nPidFile none\nLogLevel VERBOSE\n" +
		"AllowTcpForwarding yes\nMaxAuthTries 10\n")
	if major, minor := sshdVersion(t); major > 9 || (major == 9 && minor >= 8) {
		// Newer sshd penalises addresses whose logins fail; the tests fail
		// logins from 127.0.0.1 on purpose.
		conf.WriteString("PerSourcePenalties no\n")
	}
	cfgFile := filepath.Join(t.TempDir(), "sshd_config")
	if err := os.WriteFile(cfgFile, []byte(conf.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// The log goes to a file: per-connection sshd processes outlive the
	// listener while their clients are connected, and would hold a pipe.
	s := &testSSHD{t: t, cfg: cfg, log: filepath.Join(filepath.Dir(cfgFile), "sshd.log"), done: make(chan struct{})}
	s.cmd = exec.Command(sshdPath, "-D", "-E", s.log, "-f", cfgFile)
	// Its own process group, ended with the test binary if that dies.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	go func() {
		_ = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("sshd on port %d logged:\n%s", cfg.port, s.logText())
		}
	})

	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if err == nil {
			_ = conn.Close()
			return s
		}
		select {
		case <-s.done:
			t.Fatalf("sshd exited at start:\n%s", s.logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen on %s within 10s:\n%s", s.addr(), s.logText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *testSSHD) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.cfg.port)) }

// stop ends the listening sshd (the process group it started in) and waits
// for it.
func (s *testSSHD) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// newSigner makes a fresh ed25519 login key.
func newSigner(t *testing.T) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is the common setup: a test home, one sshd with a fresh host
// key, a pinning file, and an "insecure" key authorized for the user.
type fixture struct {
	home     *testHome
	sshd     *testSSHD
	hostKey  string
	hostPub  ssh.PublicKey
	pin      *Pinning
	insecure ssh.Signer
	dir      string // host-side machine folder
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	home := setupTestUser(t)
	dir := t.TempDir()
	hostKey, hostPub := newHostKey(t, dir)
	f := &fixture{
		home: home, hostKey: hostKey, hostPub: hostPub, dir: dir,
		insecure: newSigner(t),
		pin:      &Pinning{File: filepath.Join(dir, "known_hosts"), Alias: HostKeyAlias("test"), TrustOnFirstUse: true},
	}
	home.authorize(t, "", f.insecure.PublicKey())
	f.sshd = startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{hostKey}})
	return f
}

func (f *fixture) waitOptions(signers ...ssh.Signer) WaitOptions {
	return WaitOptions{
		Addr:            f.sshd.addr(),
		User:            testUser,
		Signers:         signers,
		HostKeyCallback: f.pin.HostKeyCallback(),
		Timeout:         10 * time.Second,
		KeepAlive:       -1,
	}
}

// login connects once with signers and returns the client or the error.
func (f *fixture) login(t *testing.T, signers ...ssh.Signer) (*Client, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return dialOnce(ctx, f.waitOptions(signers...))
}

// tryLogin reports whether signers get in, closing the connection.
func (f *fixture) tryLogin(t *testing.T, signers ...ssh.Signer) error {
	t.Helper()
	c, err := f.login(t, signers...)
	if err == nil {
		_ = c.Close()
	}
	return err
}

func (f *fixture) mustLogin(t *testing.T, signers ...ssh.Signer) *Client {
	t.Helper()
	c, err := f.login(t, signers...)
	if err != nil {
		t.Fatalf("login: %v\nsshd log:\n%s", err, f.sshd.logText())
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}
