//go:build linux

package sshc

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/insecurekey"
)

// otherUserKey is a line someone else added to authorized_keys: it must
// survive the replacement even though its comment looks like Vagrant's.
func otherUserKey(t *testing.T) (ssh.Signer, string) {
	s := newSigner(t)
	return s, `from="127.0.0.1",no-pty ` + strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(s.PublicKey())), "\n") + " vagrant insecure public key\n"
}

func TestEnsureMachineKeyReplacesInsecureKeys(t *testing.T) {
	f := newFixture(t)
	insecure := []ssh.Signer{f.insecure}
	// Vagrant's real RSA insecure key too, when Debian's vagrant package is
	// here: it proves the RSA key signs with an algorithm OpenSSH accepts.
	if keys, err := insecurekey.Load(context.Background(), insecurekey.Options{
		Getenv:         func(string) string { return "" },
		VagrantKeyDirs: []string{"/usr/share/rubygems-integration/all/gems/vagrant-*/keys"},
	}); err == nil {
		insecure = append(keys.Signers, insecure...)
	} else {
		t.Logf("NOTE: without Debian's vagrant package this test uses only a generated insecure key: %v", err)
	}
	other, otherLine := otherUserKey(t)
	pubs := make([]ssh.PublicKey, len(insecure))
	for i, s := range insecure {
		pubs[i] = s.PublicKey()
	}
	f.home.authorize(t, "# keep this comment\n"+otherLine, pubs...)

	machine, err := LoadOrCreateKey(filepath.Join(f.dir, "id_ed25519"), "devbundle machine test")
	if err != nil {
		t.Fatal(err)
	}
	keys := MachineKeys{Machine: machine, Comment: "devbundle machine test", Insecure: insecure}
	c, err := EnsureMachineKey(context.Background(), f.waitOptions(), keys)
	if err != nil {
		t.Fatalf("EnsureMachineKey: %v\n%s", err, f.sshd.logText())
	}
	defer func() { _ = c.Close() }()
	if !bytes.Equal(c.AuthKey().Marshal(), machine.PublicKey().Marshal()) {
		t.Fatal("the returned client is not logged in with the machine key")
	}

	// The file: other lines kept, insecure keys gone, machine key once,
	// private modes.
	data, err := os.ReadFile(f.home.authorizedKeysPath())
	if err != nil {
		t.Fatal(err)
	}
	want := "# keep this comment\n" + otherLine + AuthorizedKeyLine(machine.PublicKey(), "devbundle machine test")
	if string(data) != want {
		t.Fatalf("authorized_keys =\n%s\nwant\n%s", data, want)
	}
	fi, err := os.Stat(f.home.authorizedKeysPath())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("authorized_keys mode %v, %v", fi.Mode().Perm(), err)
	}
	if di, err := os.Stat(filepath.Dir(f.home.authorizedKeysPath())); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf(".ssh mode %v, %v", di.Mode().Perm(), err)
	}
	if st := ownerOf(t, f.home.authorizedKeysPath()); st != f.home.uid {
		t.Fatalf("authorized_keys owned by uid %d, want %d", st, f.home.uid)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(f.home.dir, ".ssh", ".authorized_keys*")); len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}

	// sshd itself: every insecure key refused, machine key and the other
	// key accepted.
	for _, s := range insecure {
		if err := f.tryLogin(t, s); !isAuthError(err) {
			t.Fatalf("insecure %s key still gets in (err %v)", s.PublicKey().Type(), err)
		}
	}
	for _, s := range []ssh.Signer{machine, other} {
		if err := f.tryLogin(t, s); err != nil {
			t.Fatalf("key %s refused after replacement: %v", ssh.FingerprintSHA256(s.PublicKey()), err)
		}
	}

	// Running it again changes nothing and logs in with the machine key.
	before, _ := os.ReadFile(f.home.authorizedKeysPath())
	c2, err := EnsureMachineKey(context.Background(), f.waitOptions(), keys)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	if after, _ := os.ReadFile(f.home.authorizedKeysPath()); !bytes.Equal(before, after) {
		t.Fatalf("second run rewrote authorized_keys:\n%s", after)
	}

	// The machine key reloads from its file, private, with a public half.
	again, err := LoadOrCreateKey(filepath.Join(f.dir, "id_ed25519"), "devbundle machine test")
	if err != nil || !bytes.Equal(again.PublicKey().Marshal(), machine.PublicKey().Marshal()) {
		t.Fatalf("reloaded key differs: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(f.dir, "id_ed25519")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", fi.Mode().Perm())
	}
	pub, _ := os.ReadFile(filepath.Join(f.dir, "id_ed25519.pub"))
	if string(pub) != AuthorizedKeyLine(machine.PublicKey(), "devbundle machine test") {
		t.Fatalf("public key file %q", pub)
	}
}

// TestEnsureMachineKeyRecoversFromInterruption cuts the replacement short
// at many points in time, as Ctrl-C would. After each cut, the user must
// still be able to log in with one of the keys; a final uninterrupted run
// must finish the job.
func TestEnsureMachineKeyRecoversFromInterruption(t *testing.T) {
	f := newFixture(t)
	machine, err := LoadOrCreateKey(filepath.Join(f.dir, "id_ed25519"), "m")
	if err != nil {
		t.Fatal(err)
	}
	keys := MachineKeys{Machine: machine, Comment: "m", Insecure: []ssh.Signer{f.insecure}}

	// How long one whole run takes here, to spread the cuts over it.
	start := time.Now()
	c, err := EnsureMachineKey(context.Background(), f.waitOptions(), keys)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	full := time.Since(start)

	interrupted := 0
	const runs = 5
	for i := range runs {
		after := full * time.Duration(i) / 4
		f.home.authorize(t, "", f.insecure.PublicKey()) // a fresh box again
		ctx, cancel := context.WithTimeout(context.Background(), after)
		c, err := EnsureMachineKey(ctx, f.waitOptions(), keys)
		cancel()
		if err == nil {
			_ = c.Close()
		} else {
			interrupted++
		}
		if f.tryLogin(t, f.insecure) != nil && f.tryLogin(t, machine) != nil {
			data, _ := os.ReadFile(f.home.authorizedKeysPath())
			t.Fatalf("cut after %s of %s (err %v): locked out; authorized_keys:\n%s", after, full, err, data)
		}
		// Whatever state the cut left, a full run completes it.
		c, err = EnsureMachineKey(context.Background(), f.waitOptions(), keys)
		if err != nil {
			t.Fatalf("run after a cut at %s: %v", after, err)
		}
		_ = c.Close()
		if err := f.tryLogin(t, f.insecure); !isAuthError(err) {
			t.Fatalf("after the recovery run from a cut at %s the insecure key still works (%v)", after, err)
		}
	}
	if interrupted == 0 {
		t.Fatal("no run was interrupted: the cut points are too late to test anything")
	}
	t.Logf("%d of %d runs were interrupted (a whole run takes %s)", interrupted, runs, full)
}

func TestInterruptedStatesRecover(t *testing.T) {
	f := newFixture(t)
	machine := newSigner(t)
	keys := MachineKeys{Machine: machine, Comment: "m", Insecure: []ssh.Signer{f.insecure}}
	c := f.mustLogin(t, f.insecure)
	ctx := context.Background()
	original, _ := os.ReadFile(f.home.authorizedKeysPath())

	// A transfer cut short never replaces the file: the new file must
	// hold the machine key's line before it is moved into place.
	line := strings.TrimSuffix(AuthorizedKeyLine(machine.PublicKey(), "m"), "\n")
	err := writeAuthorizedKeys(ctx, c, []byte(line[:len(line)/2]), line)
	if err == nil || !strings.Contains(err.Error(), "arrived incomplete") {
		t.Fatalf("a truncated file was accepted: %v", err)
	}
	if now, _ := os.ReadFile(f.home.authorizedKeysPath()); !bytes.Equal(now, original) {
		t.Fatalf("authorized_keys changed by a truncated transfer:\n%s", now)
	}

	// State left by a cut after the move but before verification: the
	// machine key works; the next run just uses it.
	if _, err := installMachineKey(ctx, c, keys); err != nil {
		t.Fatal(err)
	}
	c2, err := EnsureMachineKey(ctx, f.waitOptions(), keys)
	if err != nil {
		t.Fatal(err)
	}
	_ = c2.Close()
	if !bytes.Equal(c2.AuthKey().Marshal(), machine.PublicKey().Marshal()) {
		t.Fatal("did not log in with the machine key")
	}
}

func TestEnsureMachineKeyRestoresWhenNewKeyIsRefused(t *testing.T) {
	home := setupTestUser(t)
	dir := t.TempDir()
	hostKey, _ := newHostKey(t, dir)
	insecure := newSigner(t)
	home.authorize(t, "", insecure.PublicKey())
	// This sshd reads another file, not ~/.ssh/authorized_keys, as on a
	// box with its own AuthorizedKeysFile: the insecure key gets in from
	// there, and the machine key, installed into ~/.ssh/authorized_keys,
	// is refused.
	second := filepath.Join(home.dir, "second_keys")
	if err := os.WriteFile(second, []byte(AuthorizedKeyLine(insecure.PublicKey(), "")), 0o644); err != nil {
		t.Fatal(err)
	}
	s := startSSHD(t, sshdConfig{port: freePort(t), hostKeys: []string{hostKey}, authorizedKeysFile: second})
	pin := &Pinning{File: filepath.Join(dir, "known_hosts"), Alias: "devbundle-r", TrustOnFirstUse: true}
	wo := WaitOptions{Addr: s.addr(), User: testUser, HostKeyCallback: pin.HostKeyCallback(), Timeout: 10 * time.Second}
	before, _ := os.ReadFile(home.authorizedKeysPath())

	_, err := EnsureMachineKey(context.Background(), wo, MachineKeys{Machine: newSigner(t), Insecure: []ssh.Signer{insecure}})
	if err == nil || !strings.Contains(err.Error(), "refused the new machine key") || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("want a refusal with the old file restored, got %v", err)
	}
	if after, _ := os.ReadFile(home.authorizedKeysPath()); !bytes.Equal(before, after) {
		t.Fatalf("authorized_keys not restored:\n%s\nwant\n%s", after, before)
	}
}

func TestEnsureMachineKeyArguments(t *testing.T) {
	_, err := EnsureMachineKey(context.Background(), WaitOptions{}, MachineKeys{})
	if err == nil {
		t.Fatal("no machine key accepted")
	}
	_, err = EnsureMachineKey(context.Background(), WaitOptions{Signers: []ssh.Signer{newSigner(t)}}, MachineKeys{Machine: newSigner(t)})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatal("Signers in WaitOptions accepted")
	}
}
