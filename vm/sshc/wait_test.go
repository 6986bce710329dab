//go:build linux

package sshc

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

func TestWaitSucceedsWhenSSHDStartsLate(t *testing.T) {
	home := setupTestUser(t)
	dir := t.TempDir()
	hostKey, _ := newHostKey(t, dir)
	login := newSigner(t)
	home.authorize(t, "", login.PublicKey())
	port := freePort(t)
	pin := &Pinning{File: filepath.Join(dir, "known_hosts"), Alias: HostKeyAlias("late"), TrustOnFirstUse: true}

	type result struct {
		c        *Client
		err      error
		attempts int
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		attempts := 0
		c, err := Wait(context.Background(), WaitOptions{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), User: testUser,
			Signers:         []ssh.Signer{login},
			HostKeyCallback: pin.HostKeyCallback(),
			Timeout:         20 * time.Second,
			OnAttempt:       func(int, error) { attempts++ },
		})
		done <- result{c, err, attempts}
	}()
	const delay = 800 * time.Millisecond
	time.Sleep(delay)
	startSSHD(t, sshdConfig{port: port, hostKeys: []string{hostKey}})

	r := <-done
	if r.err != nil {
		t.Fatalf("Wait: %v", r.err)
	}
	defer func() { _ = r.c.Close() }()
	took := time.Since(start)
	if took < delay {
		t.Fatalf("Wait returned after %s, before sshd started", took)
	}
	// Backoff is capped at 2s, so sshd is found soon after it starts (the
	// margin is for a loaded CI machine; the wait's own limit is 20s).
	if took > delay+8*time.Second {
		t.Fatalf("Wait took %s, much longer than sshd's start at %s", took, delay)
	}
	if r.attempts < 2 {
		t.Fatalf("only %d failed attempts in %s: is it retrying with backoff?", r.attempts, delay)
	}
	if out, err := r.c.Output(context.Background(), "echo up"); err != nil || string(out) != "up\n" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	if r.c.AuthKey() == nil || ssh.FingerprintSHA256(r.c.AuthKey()) != ssh.FingerprintSHA256(login.PublicKey()) {
		t.Fatal("AuthKey does not report the key that logged in")
	}
}

func TestWaitTimesOutWithClearError(t *testing.T) {
	requireSSHD(t)
	port := freePort(t) // nothing listens there
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	pin := &Pinning{File: filepath.Join(t.TempDir(), "known_hosts"), Alias: "devbundle-x", TrustOnFirstUse: true}
	start := time.Now()
	_, err := Wait(context.Background(), WaitOptions{
		Addr: addr, User: "vagrant", Signers: []ssh.Signer{newSigner(t)},
		HostKeyCallback: pin.HostKeyCallback(), Timeout: 700 * time.Millisecond,
		Hint: "console log: /x/console.log",
	})
	took := time.Since(start)
	if err == nil {
		t.Fatal("Wait succeeded with nothing listening")
	}
	if took < 700*time.Millisecond || took > 3*time.Second {
		t.Fatalf("Wait gave up after %s, want about 0.7s", took)
	}
	msg := err.Error()
	for _, want := range []string{"timed out", `"` + addr + `"`, `user "vagrant"`, "nothing listens on that port yet", "connection refused"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	hint := dberr.Hint(err)
	if !strings.Contains(hint, "devbundle up") || !strings.Contains(hint, "console log: /x/console.log") {
		t.Errorf("hint %q does not say what to try", hint)
	}
	var werr *WaitError
	if !errors.As(err, &werr) || werr.Attempts < 3 {
		t.Fatalf("want a *WaitError with several attempts, got %#v", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("error should wrap both the deadline and the last attempt's error: %v", err)
	}
}

func TestWaitTimesOutOnRefusedKey(t *testing.T) {
	f := newFixture(t)
	wo := f.waitOptions(newSigner(t)) // not authorized
	wo.Timeout = 500 * time.Millisecond
	_, err := Wait(context.Background(), wo)
	if err == nil {
		t.Fatal("Wait succeeded with a key sshd does not know")
	}
	if !strings.Contains(err.Error(), "accepted none of the keys") || !strings.Contains(dberr.Hint(err), "devbundle destroy") {
		t.Fatalf("error %q / hint %q should say the key was refused and what to do", err, dberr.Hint(err))
	}
}

func TestWaitHonoursCancel(t *testing.T) {
	requireSSHD(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	pin := &Pinning{File: filepath.Join(t.TempDir(), "known_hosts"), Alias: "devbundle-x"}
	start := time.Now()
	_, err := Wait(ctx, WaitOptions{
		Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t))), User: "u", Signers: []ssh.Signer{newSigner(t)},
		HostKeyCallback: pin.HostKeyCallback(), Timeout: time.Minute,
	})
	if !errors.Is(err, context.Canceled) || time.Since(start) > 2*time.Second {
		t.Fatalf("Wait after cancel: %v after %s", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), "cancelled") {
		t.Fatalf("error %q should say it was cancelled", err)
	}
}

func TestWaitRejectsBadOptions(t *testing.T) {
	_, err := Wait(context.Background(), WaitOptions{Addr: "nope"})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{`"nope" is not host:port`, "user is empty", "no ssh private key", "host key callback"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}
