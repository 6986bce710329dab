package sshc

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func pubKey(t testing.TB) ssh.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func akLine(k ssh.PublicKey) string {
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(k)), "\n")
}

func TestRewriteAuthorizedKeys(t *testing.T) {
	insecure, insecure2, machine, other := pubKey(t), pubKey(t), pubKey(t), pubKey(t)
	add := akLine(machine) + " devbundle\n"
	for _, tc := range []struct {
		name, old, want string
		removed         int
	}{
		{"empty file", "", add, 0},
		{"only insecure", akLine(insecure) + " vagrant insecure public key\n", add, 1},
		{
			"by blob, not comment: options and odd comments",
			"# header\n" +
				`no-pty,from="10.0.0.1" ` + akLine(insecure) + " someone@laptop\n" +
				akLine(other) + " vagrant insecure public key\n" +
				"\n" +
				akLine(insecure2) + "\n",
			"# header\n" + akLine(other) + " vagrant insecure public key\n" + "\n" + add,
			2,
		},
		{"no trailing newline", akLine(other), akLine(other) + "\n" + add, 0},
		{"already there", akLine(machine) + " old comment\n" + akLine(insecure) + "\n", akLine(machine) + " old comment\n", 1},
		{"CRLF and garbage kept", "garbage line\r\n" + akLine(insecure) + "\r\n", "garbage line\r\n" + add, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, removed := rewriteAuthorizedKeys([]byte(tc.old), machine, add, []ssh.PublicKey{insecure, insecure2})
			if string(got) != tc.want || removed != tc.removed {
				t.Fatalf("got (%d removed)\n%q\nwant (%d)\n%q", removed, got, tc.removed, tc.want)
			}
		})
	}
}

func FuzzRewriteAuthorizedKeys(f *testing.F) {
	insecure, machine := pubKey(f), pubKey(f)
	f.Add([]byte(akLine(insecure) + "\n# c\n"))
	f.Add([]byte("x\n\n" + akLine(machine)))
	add := akLine(machine) + " devbundle\n"
	f.Fuzz(func(t *testing.T, old []byte) {
		got, _ := rewriteAuthorizedKeys(old, machine, add, []ssh.PublicKey{insecure})
		// Whatever the input: the machine key is authorized, the insecure
		// one is not, and no other line is lost.
		foundMachine := false
		for _, line := range bytes.SplitAfter(got, []byte("\n")) {
			k, _, _, _, err := ssh.ParseAuthorizedKey(line)
			if err != nil {
				continue
			}
			if bytes.Equal(k.Marshal(), insecure.Marshal()) {
				t.Fatalf("insecure key left in %q", got)
			}
			if bytes.Equal(k.Marshal(), machine.Marshal()) {
				foundMachine = true
			}
		}
		if !foundMachine {
			t.Fatalf("machine key missing from %q", got)
		}
		for _, line := range bytes.SplitAfter(old, []byte("\n")) {
			k, _, _, _, err := ssh.ParseAuthorizedKey(line)
			if (err != nil || !bytes.Equal(k.Marshal(), insecure.Marshal())) && !bytes.Contains(got, bytes.TrimSuffix(line, []byte("\n"))) {
				t.Fatalf("line %q lost", line)
			}
		}
	})
}

// TestShQuoteThroughRealShell runs quoted strings through /bin/sh and
// checks they come back byte for byte.
func TestShQuoteThroughRealShell(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SKIPPED: no POSIX shell on Windows")
	}
	for _, s := range []string{"", "plain", "it's", `'"$HOME` + "`x`" + `\n\`, "new\nline", "a'b'c''", "*?[]~!#&;|<>(){}"} {
		out, err := exec.Command("/bin/sh", "-c", "printf %s "+Quote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("Quote(%q) through sh = %q, %v", s, out, err)
		}
	}
}

func TestUploadCommandUsesSudoOnlyWhenAsked(t *testing.T) {
	plain := uploadCommand("/etc/x", 0o644, UploadOptions{})
	sudo := uploadCommand("/etc/x", 0o644, UploadOptions{Sudo: true})
	if strings.HasPrefix(plain, "sudo") || sudo != "sudo -n "+plain {
		t.Fatalf("plain %q, sudo %q", plain, sudo)
	}
	if !strings.Contains(plain, "chmod 0644") {
		t.Fatalf("mode missing: %q", plain)
	}
}

func TestConfigStanza(t *testing.T) {
	opts := StanzaOptions{
		Host: "default", Port: 2222, User: "vagrant",
		IdentityFile:   `/home/u/.local/share/devbundle/machines/default/id_ed25519`,
		KnownHostsFile: `/home/u/.local/share/devbundle/machines/default/known_hosts`,
		HostKeyAlias:   "devbundle-default",
	}
	got, err := renderStanza(opts, "linux")
	if err != nil {
		t.Fatal(err)
	}
	want := `Host default
  HostName 127.0.0.1
  Port 2222
  User vagrant
  IdentityFile "/home/u/.local/share/devbundle/machines/default/id_ed25519"
  IdentitiesOnly yes
  UserKnownHostsFile "/home/u/.local/share/devbundle/machines/default/known_hosts"
  StrictHostKeyChecking yes
  HostKeyAlias devbundle-default
  CheckHostIP no
  PasswordAuthentication no
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	opts.IdentityFile = `C:\Users\Jane Doe\AppData\Local\devbundle\machines\default\id_ed25519`
	opts.KnownHostsFile = `C:\Users\Jane Doe\100%\known_hosts`
	got, err = renderStanza(opts, "windows")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		`IdentityFile "C:/Users/Jane Doe/AppData/Local/devbundle/machines/default/id_ed25519"`,
		`UserKnownHostsFile "C:/Users/Jane Doe/100%%/known_hosts"`,
	} {
		if !strings.Contains(got, w) {
			t.Errorf("windows stanza lacks %q:\n%s", w, got)
		}
	}

	_, err = renderStanza(StanzaOptions{Host: "a b", Port: 0, User: "", IdentityFile: "x\"y"}, "linux")
	if err == nil {
		t.Fatal("bad options accepted")
	}
	for _, w := range []string{`Host "a b"`, "Port 0", "User", "IdentityFile", "UserKnownHostsFile is empty", "HostKeyAlias"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not report %q", err, w)
		}
	}
}

func TestPinningValidatesAlias(t *testing.T) {
	for _, alias := range []string{"", "a b", "*", "x,y", "[127.0.0.1]:22"} {
		p := &Pinning{File: filepath.Join(t.TempDir(), "kh"), Alias: alias, TrustOnFirstUse: true}
		if _, err := p.PinnedKeys(); err == nil {
			t.Errorf("alias %q accepted", alias)
		}
	}
	if got := HostKeyAlias("default"); got != "devbundle-default" {
		t.Fatalf("HostKeyAlias = %q", got)
	}
}

func TestLoadOrCreateKeyTightensMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "id_ed25519")
	k, err := LoadOrCreateKey(p, "c")
	if err != nil {
		t.Fatal(err)
	}
	if k.PublicKey().Type() != ssh.KeyAlgoED25519 {
		t.Fatalf("type %s", k.PublicKey().Type())
	}
	if runtime.GOOS == "windows" {
		return
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(p, "c"); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v not tightened", fi.Mode().Perm())
	}
	if err := os.WriteFile(p, []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKey(p, "c"); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("damaged key: %v", err)
	}
}
