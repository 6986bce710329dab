// Package kubetest makes what unit tests of the kubernetes and openshift
// services need to stand in for an API server: a cluster CA, a serving
// certificate with chosen names, an admin client certificate, the admin
// kubeconfig a box would carry, and a real TLS server on 127.0.0.1 that
// demands a client certificate of that CA.
package kubetest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// PKI is one cluster's certificates.
type PKI struct {
	CAPEM, CAKeyPEM           []byte
	ServerPEM, ServerKeyPEM   []byte
	ClientPEM, ClientKeyPEM   []byte
	ca                        *x509.Certificate
	caKey                     *ecdsa.PrivateKey
	ServerDNSNames, ServerIPs []string
}

// NewPKI makes a CA, a serving certificate for the given names (IP
// addresses or DNS names) and an admin client certificate.
func NewPKI(t testing.TB, names ...string) *PKI {
	t.Helper()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubernetes-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &PKI{CAPEM: pemOf("CERTIFICATE", der), CAKeyPEM: keyPEM(t, caKey), ca: ca, caKey: caKey}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
			p.ServerIPs = append(p.ServerIPs, n)
		} else {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, n)
			p.ServerDNSNames = append(p.ServerDNSNames, n)
		}
	}
	p.ServerPEM, p.ServerKeyPEM = p.sign(t, srvTmpl)
	p.ClientPEM, p.ClientKeyPEM = p.ClientCert(t, time.Now().Add(24*time.Hour))
	return p
}

// ClientCert signs an admin client certificate valid until notAfter.
func (p *PKI) ClientCert(t testing.TB, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	return p.sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	})
}

func (p *PKI) sign(t testing.TB, tmpl *x509.Certificate) (certPEM, kPEM []byte) {
	t.Helper()
	key := newKey(t)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", der), keyPEM(t, key)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("EC PRIVATE KEY", der)
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// AdminKubeconfig is the admin kubeconfig a box would carry (kubeadm's
// admin.conf shape), everything embedded.
func (p *PKI) AdminKubeconfig(server string) []byte {
	return p.KubeconfigFor(server, p.ClientPEM, p.ClientKeyPEM)
}

// KubeconfigFor is AdminKubeconfig with another client pair.
func (p *PKI) KubeconfigFor(server string, certPEM, keyPEM []byte) []byte {
	b64 := base64.StdEncoding.EncodeToString
	return []byte(fmt.Sprintf(`apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: %s
    server: %s
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: %s
    client-key-data: %s
`, b64(p.CAPEM), server, b64(certPEM), b64(keyPEM)))
}

// Serve runs h over TLS on 127.0.0.1 with the PKI's serving certificate,
// demanding a client certificate of its CA, and returns its port.
func (p *PKI) Serve(t testing.TB, h http.Handler) int {
	t.Helper()
	pair, err := tls.X509KeyPair(p.ServerPEM, p.ServerKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(p.CAPEM)
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are what some tests want
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	n, _ := strconv.Atoi(port)
	return n
}
