// Package tlsutil holds small TLS helpers the services share.
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
)

// IsCertificateError reports a handshake that failed on a certificate:
// the server's did not verify, or the server refused ours (a "remote
// error" alert naming a certificate: bad certificate, unknown certificate
// authority, certificate required...). Waiting longer does not cure it.
func IsCertificateError(err error) bool {
	var (
		verr  *tls.CertificateVerificationError
		uaerr x509.UnknownAuthorityError
		herr  x509.HostnameError
		cierr x509.CertificateInvalidError
		operr *net.OpError
	)
	if errors.As(err, &verr) || errors.As(err, &uaerr) || errors.As(err, &herr) || errors.As(err, &cierr) {
		return true
	}
	return errors.As(err, &operr) && operr.Op == "remote error" && operr.Err != nil &&
		strings.Contains(operr.Err.Error(), "certificate")
}
