package sshc

import (
	"fmt"
	"io"

	"golang.org/x/crypto/ssh"
)

// recordingSigner wraps a signer and notes when the server asked it to sign,
// which happens only for the key the server accepted. It keeps every
// signature algorithm of the wrapped signer (an RSA key must still sign
// with rsa-sha2-256/512, which current OpenSSH servers require).
type recordingSigner struct {
	inner ssh.MultiAlgorithmSigner
	used  *bool
}

func newRecordingSigner(s ssh.Signer, used *bool) ssh.Signer {
	return &recordingSigner{inner: asMultiAlgorithm(s), used: used}
}

func (r *recordingSigner) PublicKey() ssh.PublicKey { return r.inner.PublicKey() }

func (r *recordingSigner) Algorithms() []string { return r.inner.Algorithms() }

func (r *recordingSigner) Sign(rand io.Reader, data []byte) (*ssh.Signature, error) {
	*r.used = true
	return r.inner.Sign(rand, data)
}

func (r *recordingSigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	*r.used = true
	return r.inner.SignWithAlgorithm(rand, data, algorithm)
}

// asMultiAlgorithm gives s the MultiAlgorithmSigner interface with the
// algorithms golang.org/x/crypto/ssh would itself assume for it.
func asMultiAlgorithm(s ssh.Signer) ssh.MultiAlgorithmSigner {
	switch s := s.(type) {
	case ssh.MultiAlgorithmSigner:
		return s
	case ssh.AlgorithmSigner:
		algos := []string{s.PublicKey().Type()}
		if s.PublicKey().Type() == ssh.KeyAlgoRSA {
			algos = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		}
		if m, err := ssh.NewSignerWithAlgorithms(s, algos); err == nil {
			return m
		}
		return formatOnlySigner{s}
	default:
		return formatOnlySigner{s}
	}
}

// formatOnlySigner signs only with the algorithm named by its key format.
type formatOnlySigner struct{ ssh.Signer }

func (f formatOnlySigner) Algorithms() []string { return []string{f.PublicKey().Type()} }

func (f formatOnlySigner) SignWithAlgorithm(rand io.Reader, data []byte, algorithm string) (*ssh.Signature, error) {
	if algorithm != "" && algorithm != f.PublicKey().Type() {
		return nil, fmt.Errorf("ssh: key of type %q cannot sign with %q", f.PublicKey().Type(), algorithm)
	}
	return f.Sign(rand, data)
}
