//go:build linux

package sshc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestUploadContentModeAndAtomicity(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)
	ctx := context.Background()

	// Relative to home, an awkward name, binary content.
	name := `it's a "file" $(x).txt`
	data := []byte("line1\n\x00\xffbinary'\"$HOME`\n")
	if err := c.Upload(ctx, name, data, 0o640, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.home.dir, name)
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded %q, %v; want %q", got, err, data)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v, want 0640", fi.Mode().Perm())
	}
	if ownerOf(t, p) != f.home.uid {
		t.Fatal("uploaded file not owned by the login user")
	}

	// Overwriting replaces the file (a new inode: readers holding the old
	// one never see a mix), with the new mode.
	before, _ := os.Stat(p)
	if err := c.Upload(ctx, p, []byte("v2"), 0o600, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(p)
	if got, _ := os.ReadFile(p); string(got) != "v2" || after.Mode().Perm() != 0o600 || os.SameFile(before, after) {
		t.Fatalf("overwrite: %q mode %v same inode %v", got, after.Mode().Perm(), os.SameFile(before, after))
	}
	if leftovers, _ := filepath.Glob(filepath.Join(f.home.dir, ".devbundle-upload.*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	// Errors say what failed.
	err = c.Upload(ctx, "/nonexistent-dir/x", data, 0o644, UploadOptions{})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-dir/x") {
		t.Fatalf("upload into a missing folder: %v", err)
	}
	if err := c.Upload(ctx, "a\nb", data, 0o644, UploadOptions{}); err == nil {
		t.Fatal("a path with a newline was accepted")
	}
	// The login user has no sudo here: the error comes back, no prompt
	// hangs.
	if err := c.Upload(ctx, "/etc/devbundle-never", data, 0o644, UploadOptions{Sudo: true}); err == nil {
		t.Fatal("sudo upload by a user without sudo succeeded")
	}
	if _, err := os.Stat("/etc/devbundle-never"); err == nil {
		t.Fatal("file written")
	}
}

func TestUploadWithSudo(t *testing.T) {
	requireSSHD(t)
	if _, err := exec.LookPath("sudo"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("sudo is missing: CI must apt-get install -y sudo")
		}
		t.Skip("SKIPPED: sudo is not installed (apt-get install -y sudo)")
	}
	// Log in as root with keys from a file of our own (root's real
	// authorized_keys is never touched); root's sudo needs no password, as
	// a box's login user's does not.
	dir := t.TempDir()
	hostKey, _ := newHostKey(t, dir)
	login := newSigner(t)
	keysFile := filepath.Join(dir, "root_keys")
	if err := os.WriteFile(keysFile, []byte(AuthorizedKeyLine(login.PublicKey(), "")), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{hostKey}, authorizedKeysFile: keysFile, allowUser: "root"})
	pin := &Pinning{File: filepath.Join(dir, "kh"), Alias: "devbundle-root", TrustOnFirstUse: true}
	c, err := Wait(context.Background(), WaitOptions{
		Addr: s.addr(), User: "root", Signers: []ssh.Signer{login},
		HostKeyCallback: pin.HostKeyCallback(), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	target := filepath.Join(dir, "by-sudo")
	if err := c.Upload(context.Background(), target, []byte("root data"), 0o604, UploadOptions{Sudo: true}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(target)
	fi, _ := os.Stat(target)
	if err != nil || string(got) != "root data" || fi.Mode().Perm() != 0o604 || ownerOf(t, target) != 0 {
		t.Fatalf("sudo upload: %q %v mode %v", got, err, fi.Mode().Perm())
	}
}

func TestDialTCPTunnelsThroughSSH(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		defer func() { _ = conn.Close() }()
		line, _ := bufio.NewReader(conn).ReadString('\n')
		_, _ = io.WriteString(conn, "echo:"+line)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := c.DialTCP(ctx, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	if _, err := io.WriteString(conn, "ping\n"); err != nil {
		t.Fatal(err)
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || reply != "echo:ping\n" {
		t.Fatalf("reply %q, %v", reply, err)
	}

	// A closed port is an error naming it.
	closed := freePort(t)
	_, err = c.DialTCP(ctx, net.JoinHostPort("127.0.0.1", itoa(closed)))
	if err == nil || !strings.Contains(err.Error(), itoa(closed)) {
		t.Fatalf("dial to a closed port: %v", err)
	}
}

func TestShellWithoutTerminal(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)
	var out, errOut bytes.Buffer
	code, err := c.Shell(context.Background(), ShellOptions{
		Stdin:  strings.NewReader("echo hello from $(id -un)\necho oops >&2\nexit 4\n"),
		Stdout: &out, Stderr: &errOut,
	})
	if err != nil || code != 4 || out.String() != "hello from "+testUser+"\n" || errOut.String() != "oops\n" {
		t.Fatalf("Shell = %d, %v, out %q, err %q", code, err, out.String(), errOut.String())
	}

	// A cancelled shell returns promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	pr, pw := io.Pipe()
	defer func() { _ = pw.Close() }()
	start := time.Now()
	_, err = c.Shell(ctx, ShellOptions{Stdin: pr, Stdout: io.Discard, Stderr: io.Discard})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("cancelled shell: %v after %s", err, time.Since(start))
	}
}
