// Package kubeapi is what the kubernetes and openshift services share to
// talk to a Kubernetes API server from the host: reading the admin
// kubeconfig a box carries, writing the host's kubeconfig, and a TLS client
// that waits for /readyz and reads JSON.
//
// The server's certificate is always verified against the cluster's CA;
// nothing here ever skips verification. When the address the host uses is
// not among the certificate's names (a kubeadm certificate has no
// 127.0.0.1), the kubeconfig names one that is (tls-server-name), so
// kubectl verifies the same certificate the same way.
package kubeapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Credentials are what a client needs to reach one API server as one user.
type Credentials struct {
	// CA is the PEM of the certificate authorities the server's
	// certificate must chain to.
	CA []byte
	// ClientCert and ClientKey are a PEM client pair; Token a bearer
	// token. A user has one or the other (a pair wins).
	ClientCert []byte
	ClientKey  []byte
	Token      string
}

// Endpoint is one API server as the host reaches it.
type Endpoint struct {
	// Server is "https://host:port".
	Server string
	// ServerName is the name checked against the server's certificate
	// when it is not the host of Server ("" for that host).
	ServerName string
	Credentials
	// Dial opens connections to Server's host:port: nil dials directly;
	// a machine on a remote libvirt host is reached through SSH.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// dialer is e.Dial or a direct dialer.
func (e Endpoint) dialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if e.Dial != nil {
		return e.Dial
	}
	return (&net.Dialer{Timeout: 10 * time.Second}).DialContext
}

// kubeconfig is the part of a kubeconfig file devbundle reads and writes.
type kubeconfig struct {
	APIVersion     string         `yaml:"apiVersion"`
	Kind           string         `yaml:"kind"`
	Clusters       []namedCluster `yaml:"clusters"`
	Contexts       []namedContext `yaml:"contexts"`
	CurrentContext string         `yaml:"current-context"`
	Preferences    struct{}       `yaml:"preferences"`
	Users          []namedUser    `yaml:"users"`
}

type namedCluster struct {
	Name    string  `yaml:"name"`
	Cluster cluster `yaml:"cluster"`
}

type cluster struct {
	Server                   string `yaml:"server"`
	TLSServerName            string `yaml:"tls-server-name,omitempty"`
	CertificateAuthority     string `yaml:"certificate-authority,omitempty"`
	CertificateAuthorityData string `yaml:"certificate-authority-data,omitempty"`
	InsecureSkipTLSVerify    bool   `yaml:"insecure-skip-tls-verify,omitempty"`
}

type namedContext struct {
	Name    string      `yaml:"name"`
	Context contextSpec `yaml:"context"`
}

type contextSpec struct {
	Cluster   string `yaml:"cluster"`
	User      string `yaml:"user"`
	Namespace string `yaml:"namespace,omitempty"`
}

type namedUser struct {
	Name string `yaml:"name"`
	User user   `yaml:"user"`
}

type user struct {
	ClientCertificate     string `yaml:"client-certificate,omitempty"`
	ClientCertificateData string `yaml:"client-certificate-data,omitempty"`
	ClientKey             string `yaml:"client-key,omitempty"`
	ClientKeyData         string `yaml:"client-key-data,omitempty"`
	Token                 string `yaml:"token,omitempty"`
	TokenFile             string `yaml:"tokenFile,omitempty"`
}

// Admin is the current context's cluster and user of a kubeconfig read
// from a box, with file references still unresolved.
type Admin struct {
	// Server is the cluster's server as the guest names it.
	Server string
	Credentials
	// Files are paths (in the guest) the kubeconfig refers to instead of
	// embedding their content, by role: "ca", "cert", "key", "token".
	Files map[string]string
}

// Missing lists the guest files the credentials still need.
func (a Admin) Missing() []string {
	var out []string
	for _, role := range []string{"ca", "cert", "key", "token"} {
		if p, ok := a.Files[role]; ok {
			out = append(out, p)
		}
	}
	return out
}

// Resolve fills the credentials from the guest files read for them
// (path -> content) and checks they are complete.
func (a Admin) Resolve(files map[string][]byte) (Credentials, error) {
	c := a.Credentials
	var missing []string
	for _, path := range a.Missing() { // in a fixed order
		if _, ok := files[path]; !ok {
			missing = append(missing, strconv.Quote(path))
		}
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("the admin kubeconfig refers to %s, which the machine does not have", strings.Join(missing, ", "))
	}
	for role, path := range a.Files {
		data := files[path]
		switch role {
		case "ca":
			c.CA = data
		case "cert":
			c.ClientCert = data
		case "key":
			c.ClientKey = data
		case "token":
			c.Token = string(trimSpace(data))
		}
	}
	if err := c.Check(); err != nil {
		return Credentials{}, err
	}
	return c, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// ParseAdmin reads the current context of a kubeconfig (a box's
// admin.conf or k3s.yaml).
func ParseAdmin(data []byte) (Admin, error) {
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return Admin{}, fmt.Errorf("the admin kubeconfig is not YAML: %w", err)
	}
	ctxName := kc.CurrentContext
	if ctxName == "" && len(kc.Contexts) == 1 {
		ctxName = kc.Contexts[0].Name
	}
	var spec *contextSpec
	for i := range kc.Contexts {
		if kc.Contexts[i].Name == ctxName {
			spec = &kc.Contexts[i].Context
		}
	}
	if spec == nil {
		return Admin{}, fmt.Errorf("the admin kubeconfig has no context %q", ctxName)
	}
	var cl *cluster
	for i := range kc.Clusters {
		if kc.Clusters[i].Name == spec.Cluster {
			cl = &kc.Clusters[i].Cluster
		}
	}
	if cl == nil {
		return Admin{}, fmt.Errorf("the admin kubeconfig's context %q names cluster %q, which it does not define", ctxName, spec.Cluster)
	}
	var u *user
	for i := range kc.Users {
		if kc.Users[i].Name == spec.User {
			u = &kc.Users[i].User
		}
	}
	if u == nil {
		return Admin{}, fmt.Errorf("the admin kubeconfig's context %q names user %q, which it does not define", ctxName, spec.User)
	}
	a := Admin{Server: cl.Server, Files: map[string]string{}}
	var err error
	decode := func(field, s string) []byte {
		b, derr := decodeData(s)
		if derr != nil && err == nil {
			err = fmt.Errorf("the admin kubeconfig's %s is not base64: %w", field, derr)
		}
		return b
	}
	switch {
	case cl.CertificateAuthorityData != "":
		a.CA = decode("certificate-authority-data", cl.CertificateAuthorityData)
	case cl.CertificateAuthority != "":
		a.Files["ca"] = cl.CertificateAuthority
	}
	switch {
	case u.ClientCertificateData != "":
		a.ClientCert = decode("client-certificate-data", u.ClientCertificateData)
	case u.ClientCertificate != "":
		a.Files["cert"] = u.ClientCertificate
	}
	switch {
	case u.ClientKeyData != "":
		a.ClientKey = decode("client-key-data", u.ClientKeyData)
	case u.ClientKey != "":
		a.Files["key"] = u.ClientKey
	}
	switch {
	case u.Token != "":
		a.Token = u.Token
	case u.TokenFile != "":
		a.Files["token"] = u.TokenFile
	}
	if err != nil {
		return Admin{}, err
	}
	return a, nil
}

// Check reports credentials a client cannot use: no CA, no user
// credential, or a client pair that does not load.
func (c Credentials) Check() error {
	if len(c.CA) == 0 {
		return errors.New("the admin kubeconfig has no cluster CA (certificate-authority-data), and devbundle never skips TLS verification")
	}
	if _, err := c.caPool(); err != nil {
		return err
	}
	hasPair := len(c.ClientCert) > 0 || len(c.ClientKey) > 0
	if hasPair {
		if _, err := tls.X509KeyPair(c.ClientCert, c.ClientKey); err != nil {
			return fmt.Errorf("the admin kubeconfig's client certificate and key do not load: %w", err)
		}
		return nil
	}
	if c.Token == "" {
		return errors.New("the admin kubeconfig has neither a client certificate nor a token")
	}
	return nil
}

func (c Credentials) caPool() (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(c.CA) {
		return nil, errors.New("the cluster CA in the admin kubeconfig holds no PEM certificate")
	}
	return pool, nil
}

// CAFingerprint is the SHA-256 (hex) of the DER of the first CA
// certificate, "" when there is none.
func (c Credentials) CAFingerprint() string {
	block, _ := pem.Decode(c.CA)
	if block == nil {
		return ""
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// ClientNotAfter is the expiry of the client certificate (zero without
// one).
func (c Credentials) ClientNotAfter() time.Time {
	block, _ := pem.Decode(c.ClientCert)
	if block == nil {
		return time.Time{}
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return time.Time{}
	}
	return cert.NotAfter
}

// Names are the cluster, user and context names of a written kubeconfig.
type Names struct {
	Cluster, User, Context string
}

// NamesFor are the names devbundle gives a machine's kubeconfig entries,
// so that merging several machines' files (KUBECONFIG=a:b) never mixes
// them up.
func NamesFor(prefix, machine string) Names {
	base := prefix + "-" + machine
	return Names{Cluster: base, User: base + "-admin", Context: base}
}

// Render returns the kubeconfig for e under names: the server, the CA
// embedded, tls-server-name when needed, and the user's credentials
// embedded. It never sets insecure-skip-tls-verify.
func Render(e Endpoint, names Names) ([]byte, error) {
	if err := e.Check(); err != nil {
		return nil, err
	}
	u := user{Token: e.Token}
	if len(e.ClientCert) > 0 {
		u = user{ClientCertificateData: encodeData(e.ClientCert), ClientKeyData: encodeData(e.ClientKey)}
	}
	kc := kubeconfig{
		APIVersion: "v1",
		Kind:       "Config",
		Clusters: []namedCluster{{Name: names.Cluster, Cluster: cluster{
			Server:                   e.Server,
			TLSServerName:            e.ServerName,
			CertificateAuthorityData: encodeData(e.CA),
		}}},
		Contexts:       []namedContext{{Name: names.Context, Context: contextSpec{Cluster: names.Cluster, User: names.User}}},
		CurrentContext: names.Context,
		Users:          []namedUser{{Name: names.User, User: u}},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&kc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Load reads a kubeconfig devbundle wrote (or any with embedded data) as
// the Endpoint of its current context. It refuses one that skips TLS
// verification.
func Load(path string) (Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Endpoint{}, err
	}
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil {
		return Endpoint{}, fmt.Errorf("kubeconfig %q is not YAML: %w", path, err)
	}
	for _, c := range kc.Clusters {
		if c.Cluster.InsecureSkipTLSVerify {
			return Endpoint{}, fmt.Errorf("kubeconfig %q skips TLS verification; devbundle does not use it", path)
		}
	}
	a, err := ParseAdmin(data)
	if err != nil {
		return Endpoint{}, fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	if len(a.Files) > 0 {
		return Endpoint{}, fmt.Errorf("kubeconfig %q refers to other files; devbundle writes every credential into it", path)
	}
	var serverName string
	for _, c := range kc.Clusters {
		if c.Cluster.Server == a.Server {
			serverName = c.Cluster.TLSServerName
		}
	}
	e := Endpoint{Server: a.Server, ServerName: serverName, Credentials: a.Credentials}
	if err := e.Check(); err != nil {
		return Endpoint{}, fmt.Errorf("kubeconfig %q: %w", path, err)
	}
	return e, nil
}
