//go:build linux

package sshc

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

func TestHostKeyPinnedOnFirstUseFollowsPortAndRefusesNewKey(t *testing.T) {
	f := newFixture(t)
	f.mustLogin(t, f.insecure)

	// Pinned on first use, under the alias, in a private file.
	data, err := os.ReadFile(f.pin.File)
	if err != nil {
		t.Fatal(err)
	}
	want := f.pin.Alias + " " + string(ssh.MarshalAuthorizedKey(f.hostPub))
	if string(data) != want {
		t.Fatalf("known_hosts = %q, want %q", data, want)
	}
	if fi, _ := os.Stat(f.pin.File); fi.Mode().Perm() != 0o600 {
		t.Fatalf("known_hosts mode %v, want 0600", fi.Mode().Perm())
	}
	algos, err := f.pin.HostKeyAlgorithms()
	if err != nil || !slices.Equal(algos, []string{ssh.KeyAlgoED25519}) {
		t.Fatalf("HostKeyAlgorithms = %v, %v", algos, err)
	}

	// The next boot forwards another port: same key, still accepted, and
	// nothing new is written.
	other := startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{f.hostKey}})
	wo := f.waitOptions(f.insecure)
	wo.Addr = other.addr()
	c, err := Wait(context.Background(), wo)
	if err != nil {
		t.Fatalf("same host key on a new port refused: %v", err)
	}
	_ = c.Close()
	if again, _ := os.ReadFile(f.pin.File); string(again) != string(data) {
		t.Fatalf("known_hosts changed to %q", again)
	}

	// The machine is replaced by another with a new host key on the same
	// port: refused at once, with the file named and what to do.
	f.sshd.stop()
	newKey, newPub := newHostKey(t, f.dir)
	startSSHD(t, sshdConfig{port: f.sshd.cfg.port, hostKeys: []string{newKey}})
	start := time.Now()
	_, err = Wait(context.Background(), f.waitOptions(f.insecure))
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("a changed host key took %s to refuse: it must not be retried", took)
	}
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("want *HostKeyChangedError, got %v", err)
	}
	msg := err.Error()
	for _, w := range []string{f.pin.File, f.pin.Alias, ssh.FingerprintSHA256(newPub), ssh.FingerprintSHA256(f.hostPub), "changed"} {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not mention %q", msg, w)
		}
	}
	hint := dberr.Hint(err)
	if !strings.Contains(hint, "devbundle destroy") || !strings.Contains(hint, f.pin.File) {
		t.Errorf("hint %q should say to destroy or delete the file", hint)
	}
	if again, _ := os.ReadFile(f.pin.File); string(again) != string(data) {
		t.Fatalf("a refused key was written: %q", again)
	}
}

func TestHostKeyUnknownWithoutTrustOnFirstUse(t *testing.T) {
	f := newFixture(t)
	f.pin.TrustOnFirstUse = false
	_, err := f.login(t, f.insecure)
	var unknown *HostKeyUnknownError
	if !errors.As(err, &unknown) || !strings.Contains(dberr.Hint(err), "devbundle destroy") {
		t.Fatalf("want *HostKeyUnknownError with a hint, got %v", err)
	}
	if _, err := os.Stat(f.pin.File); !os.IsNotExist(err) {
		t.Fatalf("known_hosts was written without trust on first use: %v", err)
	}

	// A damaged file is reported, not silently replaced.
	if err := os.WriteFile(f.pin.File, []byte("devbundle-test ssh-ed25519 !!!notbase64\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f.pin.TrustOnFirstUse = true
	_, err = f.login(t, f.insecure)
	if err == nil || !strings.Contains(err.Error(), f.pin.File) || dberr.Hint(err) == "" {
		t.Fatalf("damaged known_hosts: %v (hint %q)", err, dberr.Hint(err))
	}
}

func TestHostKeyAlgorithmsPickThePinnedKey(t *testing.T) {
	f := newFixture(t)
	// A second sshd holding an ECDSA and an ed25519 host key.
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecPath, ecPub := writeHostKey(t, f.dir, ecKey)
	s := startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{f.hostKey, ecPath}})
	pin := &Pinning{File: filepath.Join(f.dir, "kh2"), Alias: "devbundle-two", TrustOnFirstUse: true}
	wo := f.waitOptions(f.insecure)
	wo.Addr = s.addr()
	wo.HostKeyCallback = pin.HostKeyCallback()

	// First boot pins the ECDSA key.
	wo.HostKeyAlgorithms = []string{ssh.KeyAlgoECDSA256}
	c, err := Wait(context.Background(), wo)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	keys, err := pin.PinnedKeys()
	if err != nil || len(keys) != 1 || ssh.FingerprintSHA256(keys[0]) != ssh.FingerprintSHA256(ecPub) {
		t.Fatalf("PinnedKeys = %v, %v", keys, err)
	}

	// Later connections ask for the pinned key's algorithm and get in.
	wo.HostKeyAlgorithms, err = pin.HostKeyAlgorithms()
	if err != nil || !slices.Equal(wo.HostKeyAlgorithms, []string{ssh.KeyAlgoECDSA256}) {
		t.Fatalf("HostKeyAlgorithms = %v, %v", wo.HostKeyAlgorithms, err)
	}
	c, err = Wait(context.Background(), wo)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	// Asking for the other key type shows why that matters: the other
	// key is not the pinned one.
	wo.HostKeyAlgorithms = []string{ssh.KeyAlgoED25519}
	_, err = Wait(context.Background(), wo)
	var changed *HostKeyChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("want *HostKeyChangedError, got %v", err)
	}
}
