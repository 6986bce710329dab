package docker

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/devbundle/devbundle/internal/atomicfile"
)

// Files in the machine's docker folder on the host. ca.pem, cert.pem and
// key.pem are the layout the docker CLI reads from DOCKER_CERT_PATH; the CA
// key and the server's pair stay beside them so later `up`s can remake a
// certificate without changing the CA the client trusts.
const (
	CAFile         = "ca.pem"
	CAKeyFile      = "ca-key.pem"
	ClientCertFile = "cert.pem"
	ClientKeyFile  = "key.pem"
	ServerCertFile = "server-cert.pem"
	ServerKeyFile  = "server-key.pem"
)

// Certificate lifetimes. A certificate within renewBefore of its end is
// remade by the next `up`. Certificates start backDate before they are
// made, so a guest whose clock lags the host's (after the host slept)
// still accepts them.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 825 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
	backDate     = 24 * time.Hour
)

// CertOptions say which certificates a machine needs.
type CertOptions struct {
	// Dir is the machine's docker folder (made 0700 when missing).
	Dir string
	// Machine names the machine in the certificates' subjects.
	Machine string
	// SANs are the names and addresses the host may use to reach dockerd;
	// each is an IP address or a DNS name. See NormalizeSANs.
	SANs []string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Certs is the result of EnsureCerts: the certificates in Dir and what was
// remade.
type Certs struct {
	CA, Server, Client *x509.Certificate
	// CAPEM, ServerCertPEM and ServerKeyPEM are what the guest needs.
	CAPEM, ServerCertPEM, ServerKeyPEM []byte
	// Made lists the certificates made by this call: "ca", "server",
	// "client".
	Made []string
}

// Fingerprint is the SHA-256 of a certificate's DER encoding, in hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// NormalizeSANs returns the distinct SANs, sorted: IP addresses in their
// canonical form, DNS names lowercased without a trailing dot. Empty
// entries are dropped; an entry that is neither an IP address nor a valid
// DNS name is an error.
func NormalizeSANs(sans []string) ([]string, error) {
	var out []string
	var bad []error
	for _, s := range sans {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if ip := net.ParseIP(s); ip != nil {
			out = append(out, ip.String())
			continue
		}
		s = strings.ToLower(strings.TrimSuffix(s, "."))
		if !validDNSName(s) {
			bad = append(bad, fmt.Errorf("%q is neither an IP address nor a valid host name", s))
			continue
		}
		out = append(out, s)
	}
	if len(bad) > 0 {
		return nil, errors.Join(bad...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// validDNSName reports whether s is a host name a certificate can carry:
// dot-separated labels of letters, digits and inner hyphens, 1-63 bytes
// each, 253 in all.
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// CertSANs returns the normalized SANs a certificate carries.
func CertSANs(c *x509.Certificate) []string {
	var s []string
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	s = append(s, c.DNSNames...)
	out, err := NormalizeSANs(s)
	if err != nil {
		return s // not one of ours; it will not compare equal
	}
	return out
}

// EnsureCerts makes sure Dir holds a CA, a server certificate for exactly
// opts.SANs and a client certificate, all signed by that CA, valid now and
// not about to expire, each matching its key; it makes whatever is missing
// or wrong. The CA is kept while it is good, so a client's ca.pem stays
// valid when only the server certificate is remade; a new CA brings a new
// server and client certificate. Keys are written 0600, every file
// atomically; an interrupted call leaves files that the next call detects
// and remakes.
func EnsureCerts(opts CertOptions) (*Certs, error) {
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	t := now()
	sans, err := NormalizeSANs(opts.SANs)
	if err != nil {
		return nil, fmt.Errorf("certificate names: %w", err)
	}
	if len(sans) == 0 {
		return nil, errors.New("certificate names: none given")
	}
	if err := ensureDir(opts.Dir); err != nil {
		return nil, err
	}
	path := func(name string) string { return filepath.Join(opts.Dir, name) }
	out := &Certs{}

	ca, caKey, caPEM, err := loadPair(path(CAFile), path(CAKeyFile))
	if err != nil || !ca.IsCA || !fresh(ca, t) {
		ca, caKey, caPEM, err = makeCA(opts, t)
		if err != nil {
			return nil, err
		}
		out.Made = append(out.Made, "ca")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	server, _, serverPEM, err := loadPair(path(ServerCertFile), path(ServerKeyFile))
	if err != nil || !fresh(server, t) || !signedFor(server, roots, t, x509.ExtKeyUsageServerAuth) ||
		!slices.Equal(CertSANs(server), sans) {
		server, serverPEM, err = makeLeaf(opts, t, ca, caKey, leafSpec{
			cn: "devbundle docker server " + opts.Machine, usage: x509.ExtKeyUsageServerAuth, sans: sans,
			certFile: ServerCertFile, keyFile: ServerKeyFile,
		})
		if err != nil {
			return nil, err
		}
		out.Made = append(out.Made, "server")
	}

	client, _, _, err := loadPair(path(ClientCertFile), path(ClientKeyFile))
	if err != nil || !fresh(client, t) || !signedFor(client, roots, t, x509.ExtKeyUsageClientAuth) {
		client, _, err = makeLeaf(opts, t, ca, caKey, leafSpec{
			cn: "devbundle docker client " + opts.Machine, usage: x509.ExtKeyUsageClientAuth,
			certFile: ClientCertFile, keyFile: ClientKeyFile,
		})
		if err != nil {
			return nil, err
		}
		out.Made = append(out.Made, "client")
	}

	serverKeyPEM, err := os.ReadFile(path(ServerKeyFile))
	if err != nil {
		return nil, err
	}
	out.CA, out.Server, out.Client = ca, server, client
	out.CAPEM, out.ServerCertPEM, out.ServerKeyPEM = caPEM, serverPEM, serverKeyPEM
	return out, nil
}

// ensureDir makes dir 0700, tightening an existing one.
func ensureDir(dir string) error {
	if dir == "" {
		return errors.New("no folder given for the docker certificates")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make the docker certificate folder: %w", err)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if info.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make %q private: %w", dir, err)
		}
	}
	return nil
}

// fresh reports whether c is valid at t and for at least renewBefore more.
func fresh(c *x509.Certificate, t time.Time) bool {
	return !t.Before(c.NotBefore) && t.Add(renewBefore).Before(c.NotAfter)
}

// signedFor reports whether c chains to roots at t for usage.
func signedFor(c *x509.Certificate, roots *x509.CertPool, t time.Time, usage x509.ExtKeyUsage) bool {
	_, err := c.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{usage}})
	return err == nil
}

// loadPair reads a certificate and its private key and checks they match.
// A key file readable by others is made 0600.
func loadPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, []byte, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, nil, fmt.Errorf("%q holds no PEM certificate", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse %q: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, nil, nil, fmt.Errorf("%q holds no PEM key", keyFile)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse %q: %w", keyFile, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, nil, nil, fmt.Errorf("%q does not match %q", keyFile, certFile)
	}
	if err := privateMode(keyFile); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, certPEM, nil
}

// privateMode makes a key file 0600 when it is not.
func privateMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.Mode().Perm() != 0o600 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("make %q private: %w", path, err)
		}
	}
	return nil
}

func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate a key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode a key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("make a serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writePair writes the key (0600) before the certificate (0644), each
// atomically: a crash in between leaves a pair that does not match, which
// the next EnsureCerts remakes.
func writePair(dir, certFile, keyFile string, certPEM, keyPEM []byte) error {
	if err := atomicfile.WriteFile(filepath.Join(dir, keyFile), keyPEM, 0o600); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, certFile), certPEM, 0o644)
}

func makeCA(opts CertOptions, t time.Time) (*x509.Certificate, crypto.Signer, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "devbundle docker CA " + opts.Machine, Organization: []string{"devbundle"}},
		NotBefore:             t.Add(-backDate),
		NotAfter:              t.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("make the docker CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writePair(opts.Dir, CAFile, CAKeyFile, certPEM, keyPEM); err != nil {
		return nil, nil, nil, err
	}
	return cert, key, certPEM, nil
}

type leafSpec struct {
	cn                string
	usage             x509.ExtKeyUsage
	sans              []string
	certFile, keyFile string
}

func makeLeaf(opts CertOptions, t time.Time, ca *x509.Certificate, caKey crypto.Signer, spec leafSpec) (*x509.Certificate, []byte, error) {
	key, keyPEM, err := newKey()
	if err != nil {
		return nil, nil, err
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: spec.cn, Organization: []string{"devbundle"}},
		NotBefore:             t.Add(-backDate),
		NotAfter:              t.Add(leafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{spec.usage},
		BasicConstraintsValid: true,
	}
	for _, s := range spec.sans {
		if ip := net.ParseIP(s); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, s)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("make %s: %w", spec.cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writePair(opts.Dir, spec.certFile, spec.keyFile, certPEM, keyPEM); err != nil {
		return nil, nil, err
	}
	return cert, certPEM, nil
}
