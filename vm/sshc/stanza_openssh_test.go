//go:build linux

package sshc

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestConfigStanzaWorksWithOpenSSH proves the stanza and the pinning file
// against the real ssh client: it logs in with the machine key, checks the
// host key under the alias whatever the port, and refuses a changed key.
func TestConfigStanzaWorksWithOpenSSH(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the ssh client is missing: apt-get install -y openssh-client")
		}
		t.Skip("SKIPPED: no ssh client (apt-get install -y openssh-client)")
	}
	f := newFixture(t)
	// A folder name with a space and a percent sign, as a user's might be.
	dir := filepath.Join(f.dir, "my machines 100%")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "id_ed25519")
	machine, err := LoadOrCreateKey(keyPath, "m")
	if err != nil {
		t.Fatal(err)
	}
	f.pin.File = filepath.Join(dir, "known_hosts")
	c, err := EnsureMachineKey(context.Background(), f.waitOptions(), MachineKeys{Machine: machine, Insecure: []ssh.Signer{f.insecure}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()

	runSSH := func(port int) (string, error) {
		stanza, err := ConfigStanza(StanzaOptions{
			Host: "devbox", Port: port, User: testUser,
			IdentityFile: keyPath, KnownHostsFile: f.pin.File, HostKeyAlias: f.pin.Alias,
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(t.TempDir(), "config")
		if err := os.WriteFile(cfg, []byte(stanza), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, sshBin, "-F", cfg, "-o", "BatchMode=yes", "devbox", "echo", "via-openssh").CombinedOutput()
		return string(out), err
	}

	out, err := runSSH(f.sshd.cfg.port)
	if err != nil || strings.TrimSpace(out) != "via-openssh" {
		t.Fatalf("ssh with the stanza: %v\n%s", err, out)
	}
	// A new forwarded port: the alias still finds the pinned key.
	other := startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{f.hostKey}})
	if out, err := runSSH(other.cfg.port); err != nil || strings.TrimSpace(out) != "via-openssh" {
		t.Fatalf("ssh on another port: %v\n%s", err, out)
	}
	// A machine with another host key on that port is refused.
	other.stop()
	newKey, _ := newHostKey(t, f.dir)
	startSSHD(t, sshdConfig{port: other.cfg.port, hostKeys: []string{newKey}})
	out, err = runSSH(other.cfg.port)
	if err == nil || !strings.Contains(out, "HOST IDENTIFICATION HAS CHANGED") {
		t.Fatalf("ssh accepted a changed host key: %v\n%s", err, out)
	}
}
