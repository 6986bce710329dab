//go:build linux

package sshc

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hopFixture is a real sshd acting as the remote libvirt host, with a key
// file that logs in to it and a known_hosts file that holds its key.
func hopFixture(t *testing.T) (*fixture, Hop) {
	t.Helper()
	f := newFixture(t)
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "hop key")
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "id_hop")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	f.home.authorize(t, "", f.insecure.PublicKey(), signer.PublicKey())
	known := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(f.sshd.addr())}, f.hostPub)
	if err := os.WriteFile(known, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f, Hop{User: testUser, Addr: f.sshd.addr(), KeyFile: keyFile, KnownHostsFile: known}
}

// A machine reached through a hop: the SSH connection to the guest (here
// the same sshd) runs inside a channel of the hop's connection, which has
// no deadlines; the login and a command work, and closing the client
// closes the hop too.
func TestLoginThroughHop(t *testing.T) {
	f, h := hopFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hop, err := DialHop(ctx, h, func(string) string { return "" })
	if err != nil {
		t.Fatalf("DialHop: %v\nsshd log:\n%s", err, f.sshd.logText())
	}
	opts := f.waitOptions(f.insecure)
	opts.Dial = hop.DialContext
	c, err := Wait(ctx, opts)
	if err != nil {
		t.Fatalf("login through the hop: %v\nsshd log:\n%s", err, f.sshd.logText())
	}
	c.AlsoClose(hop)
	out, err := c.Output(ctx, "echo through-the-hop")
	if err != nil || strings.TrimSpace(string(out)) != "through-the-hop" {
		t.Fatalf("Output = %q, %v", out, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := hop.DialContext(ctx, "tcp", f.sshd.addr()); err == nil {
		t.Error("the hop still carries connections after the client closed")
	}
}

func TestDialHopRefusesUnknownAndChangedHostKeys(t *testing.T) {
	f, h := hopFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	noEnv := func(string) string { return "" }

	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	unknown := h
	unknown.KnownHostsFile = empty
	if _, err := DialHop(ctx, unknown, noEnv); err == nil || !strings.Contains(err.Error(), "is not in") {
		t.Errorf("unknown host key: %v", err)
	}

	other := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(f.sshd.addr())}, newSigner(t).PublicKey())
	if err := os.WriteFile(other, []byte(line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := h
	changed.KnownHostsFile = other
	if _, err := DialHop(ctx, changed, noEnv); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Errorf("changed host key: %v", err)
	}
}

func TestDialHopWithoutAnyKeySaysHowToGiveOne(t *testing.T) {
	_, h := hopFixture(t)
	h.KeyFile = ""
	t.Setenv("HOME", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := DialHop(ctx, h, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "keyfile=") {
		t.Fatalf("no key: %v", err)
	}
}
