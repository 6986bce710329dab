package docker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devbundle/devbundle/internal/tlsutil"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func ensure(t *testing.T, dir string, now time.Time, sans ...string) *Certs {
	t.Helper()
	c, err := EnsureCerts(CertOptions{Dir: dir, Machine: "m1", SANs: sans, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatalf("EnsureCerts: %v", err)
	}
	return c
}

func TestEnsureCertsMakesAVerifiableSet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "docker")
	c := ensure(t, dir, t0, "127.0.0.1", "localhost", "devbox", "192.168.121.10")

	if !slices.Equal(c.Made, []string{"ca", "server", "client"}) {
		t.Errorf("made %v, want ca, server, client", c.Made)
	}
	if !c.CA.IsCA || c.CA.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA %v, key usage %v", c.CA.IsCA, c.CA.KeyUsage)
	}
	for name, cert := range map[string]*x509.Certificate{"ca": c.CA, "server": c.Server, "client": c.Client} {
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			t.Errorf("%s: key %T, want ECDSA P-256", name, cert.PublicKey)
		}
		if !cert.NotBefore.Before(t0) || !cert.NotAfter.After(t0.Add(365*24*time.Hour)) {
			t.Errorf("%s: valid %s to %s", name, cert.NotBefore, cert.NotAfter)
		}
	}
	if got, want := CertSANs(c.Server), []string{"127.0.0.1", "192.168.121.10", "devbox", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("server SANs %v, want %v", got, want)
	}
	if !slices.Equal(c.Server.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("server ext key usage %v", c.Server.ExtKeyUsage)
	}
	if !slices.Equal(c.Client.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Errorf("client ext key usage %v", c.Client.ExtKeyUsage)
	}
	if c.Server.IsCA || c.Client.IsCA {
		t.Errorf("a leaf is a CA")
	}

	roots := x509.NewCertPool()
	roots.AddCert(c.CA)
	for _, name := range []string{"127.0.0.1", "192.168.121.10", "devbox", "localhost"} {
		if _, err := c.Server.Verify(x509.VerifyOptions{Roots: roots, DNSName: name, CurrentTime: t0}); err != nil {
			t.Errorf("server certificate for %q: %v", name, err)
		}
	}
	if _, err := c.Server.Verify(x509.VerifyOptions{Roots: roots, DNSName: "10.0.2.15", CurrentTime: t0}); err == nil {
		t.Errorf("server certificate verifies for an address it does not name")
	}
	if _, err := c.Client.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
	if _, err := c.Client.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t0, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Errorf("the client certificate also serves as a server certificate")
	}

	if runtime.GOOS != "windows" {
		modes := map[string]os.FileMode{
			CAFile: 0o644, CAKeyFile: 0o600, ClientCertFile: 0o644, ClientKeyFile: 0o600,
			ServerCertFile: 0o644, ServerKeyFile: 0o600,
		}
		for name, want := range modes {
			info, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if info.Mode().Perm() != want {
				t.Errorf("%s: mode %o, want %o", name, info.Mode().Perm(), want)
			}
		}
		if info, err := os.Stat(dir); err != nil || info.Mode().Perm() != 0o700 {
			t.Errorf("folder: %v %v, want 0700", info.Mode(), err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != len(modes) {
			t.Errorf("folder holds %d files, want %d (temporary files left?)", len(entries), len(modes))
		}
	}
	if string(c.CAPEM) != string(mustRead(t, filepath.Join(dir, CAFile))) ||
		string(c.ServerKeyPEM) != string(mustRead(t, filepath.Join(dir, ServerKeyFile))) {
		t.Errorf("returned PEM differs from the files")
	}
}

// TestCertsWorkInARealTLSHandshake runs a TLS server with the server pair
// that requires a client certificate of the CA, and connects with the
// files the docker CLI reads from DOCKER_CERT_PATH.
func TestCertsWorkInARealTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	ensure(t, dir, time.Now(), "127.0.0.1", "localhost")
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(mustRead(t, filepath.Join(dir, CAFile)))
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if err := conn.(*tls.Conn).Handshake(); err == nil {
					_, _ = conn.Write([]byte("ok"))
				}
			}()
		}
	}()

	dial := func(cfg *tls.Config) error {
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		b, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		if string(b) != "ok" {
			return io.ErrUnexpectedEOF
		}
		return nil
	}
	cfg, err := tlsFiles{dir: dir}.config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(cfg); err != nil {
		t.Fatalf("handshake with the client files: %v", err)
	}
	noCert := cfg.Clone()
	noCert.Certificates = nil
	if err := dial(noCert); err == nil {
		t.Errorf("a client without a certificate got through")
	} else if !tlsutil.IsCertificateError(err) {
		t.Errorf("refused client: %v is not seen as a certificate error", err)
	}
	wrongName := cfg.Clone()
	wrongName.ServerName = "10.0.2.15"
	if err := dial(wrongName); err == nil || !tlsutil.IsCertificateError(err) {
		t.Errorf("server name outside the SANs: %v, want a certificate error", err)
	}
	other := t.TempDir()
	ensure(t, other, time.Now(), "127.0.0.1")
	otherCfg, err := tlsFiles{dir: other}.config("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(otherCfg); err == nil || !tlsutil.IsCertificateError(err) {
		t.Errorf("another machine's certificates: %v, want a certificate error", err)
	}
}

func TestEnsureCertsKeepsWhatIsGood(t *testing.T) {
	dir := t.TempDir()
	first := ensure(t, dir, t0, "127.0.0.1", "localhost", "devbox")
	before := snapshot(t, dir)

	// Same names in another order, case and with duplicates: nothing changes.
	again := ensure(t, dir, t0.Add(time.Hour), "DEVBOX", "localhost", "127.0.0.1", "devbox.", "127.0.0.1")
	if len(again.Made) != 0 {
		t.Errorf("second call made %v", again.Made)
	}
	if after := snapshot(t, dir); !maps.Equal(before, after) {
		t.Errorf("files changed on a call with nothing to do")
	}
	if Fingerprint(again.Server) != Fingerprint(first.Server) {
		t.Errorf("server certificate changed")
	}
}

func TestEnsureCertsRemakesTheServerWhenNamesChange(t *testing.T) {
	dir := t.TempDir()
	first := ensure(t, dir, t0, "127.0.0.1", "localhost", "192.168.121.10")
	before := snapshot(t, dir)

	second := ensure(t, dir, t0, "127.0.0.1", "localhost", "192.168.121.77")
	if !slices.Equal(second.Made, []string{"server"}) {
		t.Fatalf("made %v, want only the server certificate", second.Made)
	}
	if got := CertSANs(second.Server); !slices.Contains(got, "192.168.121.77") || slices.Contains(got, "192.168.121.10") {
		t.Errorf("server SANs %v: the new address is missing or the old one kept", got)
	}
	after := snapshot(t, dir)
	for _, f := range []string{CAFile, CAKeyFile, ClientCertFile, ClientKeyFile} {
		if before[f] != after[f] {
			t.Errorf("%s changed; the client's files must stay valid", f)
		}
	}
	if Fingerprint(second.CA) != Fingerprint(first.CA) {
		t.Errorf("the CA changed")
	}
	// A name removed counts as a change too: no certificate for an old address.
	third := ensure(t, dir, t0, "127.0.0.1", "localhost")
	if !slices.Equal(third.Made, []string{"server"}) || slices.Contains(CertSANs(third.Server), "192.168.121.77") {
		t.Errorf("removing a name: made %v, SANs %v", third.Made, CertSANs(third.Server))
	}
}

func TestEnsureCertsRenewsBeforeExpiry(t *testing.T) {
	dir := t.TempDir()
	first := ensure(t, dir, t0, "127.0.0.1")
	// Within renewBefore of the leaves' end: leaves remade, CA kept.
	late := first.Server.NotAfter.Add(-renewBefore / 2)
	second := ensure(t, dir, late, "127.0.0.1")
	if !slices.Equal(second.Made, []string{"server", "client"}) {
		t.Errorf("near the leaves' end: made %v, want server, client", second.Made)
	}
	// Near the CA's end: everything remade, and the new leaves chain to the new CA.
	third := ensure(t, dir, first.CA.NotAfter.Add(-renewBefore/2), "127.0.0.1")
	if !slices.Equal(third.Made, []string{"ca", "server", "client"}) {
		t.Errorf("near the CA's end: made %v", third.Made)
	}
	if third.Server.CheckSignatureFrom(third.CA) != nil || third.Client.CheckSignatureFrom(third.CA) != nil {
		t.Errorf("leaves do not chain to the new CA")
	}
	// A clock before the certificates were made (host clock set back).
	fourth := ensure(t, dir, first.CA.NotBefore.Add(-time.Hour), "127.0.0.1")
	if !slices.Contains(fourth.Made, "ca") {
		t.Errorf("certificates not yet valid were kept: made %v", fourth.Made)
	}
}

func TestEnsureCertsRepairsDamage(t *testing.T) {
	cases := []struct {
		name   string
		damage func(dir string) error
		want   []string
	}{
		{"server key missing", func(d string) error { return os.Remove(filepath.Join(d, ServerKeyFile)) }, []string{"server"}},
		{"client cert garbage", func(d string) error {
			return os.WriteFile(filepath.Join(d, ClientCertFile), []byte("not a certificate"), 0o644)
		}, []string{"client"}},
		{"server key of another pair", func(d string) error {
			return copyFile(filepath.Join(d, ClientKeyFile), filepath.Join(d, ServerKeyFile))
		}, []string{"server"}},
		{"CA key missing", func(d string) error { return os.Remove(filepath.Join(d, CAKeyFile)) }, []string{"ca", "server", "client"}},
		{"client cert replaced by the server cert", func(d string) error {
			return copyFile(filepath.Join(d, ServerCertFile), filepath.Join(d, ClientCertFile))
		}, []string{"client"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ensure(t, dir, t0, "127.0.0.1")
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			got := ensure(t, dir, t0, "127.0.0.1")
			if !slices.Equal(got.Made, tc.want) {
				t.Errorf("made %v, want %v", got.Made, tc.want)
			}
			if again := ensure(t, dir, t0, "127.0.0.1"); len(again.Made) != 0 {
				t.Errorf("after repair, a further call made %v", again.Made)
			}
		})
	}
}

func TestEnsureCertsTightensModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no POSIX modes")
	}
	dir := t.TempDir()
	ensure(t, dir, t0, "127.0.0.1")
	for _, f := range []string{ClientKeyFile, CAKeyFile, ServerKeyFile} {
		if err := os.Chmod(filepath.Join(dir, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if c := ensure(t, dir, t0, "127.0.0.1"); len(c.Made) != 0 {
		t.Errorf("made %v", c.Made)
	}
	for _, f := range []string{ClientKeyFile, CAKeyFile, ServerKeyFile} {
		info, _ := os.Stat(filepath.Join(dir, f))
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s left %o", f, info.Mode().Perm())
		}
	}
	if info, _ := os.Stat(dir); info.Mode().Perm() != 0o700 {
		t.Errorf("folder left %o", info.Mode().Perm())
	}
}

func TestNormalizeSANs(t *testing.T) {
	got, err := NormalizeSANs([]string{" 127.0.0.1 ", "::1", "0:0:0:0:0:0:0:1", "Devbox.Example.", "", "localhost", "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1", "::1", "devbox.example", "localhost"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"dev box", "-devbox", "devbox-", "a..b", "under_score", strings.Repeat("a", 64), "héllo"} {
		if _, err := NormalizeSANs([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := EnsureCerts(CertOptions{Dir: t.TempDir(), SANs: nil}); err == nil {
		t.Errorf("no names accepted")
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{CAFile, CAKeyFile, ClientCertFile, ClientKeyFile, ServerCertFile, ServerKeyFile} {
		out[f] = string(mustRead(t, filepath.Join(dir, f)))
	}
	return out
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}
