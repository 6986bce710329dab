package sshc

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/devbundle/devbundle/internal/atomicfile"
	"github.com/devbundle/devbundle/internal/dberr"
)

// HostKeyAlias is the stable name a machine's host key is recorded under in
// its known_hosts file. Forwarded ports change between boots, so the key is
// pinned to this name, never to "[127.0.0.1]:port"; OpenSSH is told the
// same name with HostKeyAlias (see ConfigStanza).
func HostKeyAlias(machine string) string { return "devbundle-" + machine }

var aliasPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Pinning checks a machine's SSH host key against the machine's own
// known_hosts file (OpenSSH format), by Alias whatever address or port the
// machine is reached on.
type Pinning struct {
	// File is the machine's known_hosts file. It is written with mode 0600
	// (its folder is created 0700 when missing).
	File string
	// Alias is the name the key is recorded under: HostKeyAlias(machine).
	Alias string
	// TrustOnFirstUse records the key the server presents when File holds
	// none for Alias yet. Set it only while `up` boots a machine for the
	// first time; otherwise an unknown key is refused.
	TrustOnFirstUse bool

	mu sync.Mutex
}

// HostKeyChangedError is returned when the server presents a key other than
// the one pinned for the machine.
type HostKeyChangedError struct {
	File   string
	Alias  string
	Addr   string
	Got    ssh.PublicKey
	Pinned []ssh.PublicKey
}

func (e *HostKeyChangedError) Error() string {
	pinned := make([]string, len(e.Pinned))
	for i, k := range e.Pinned {
		pinned[i] = k.Type() + " " + ssh.FingerprintSHA256(k)
	}
	return fmt.Sprintf("host key of %q at %s changed: it presented %s %s, but %q pins %v for it",
		e.Alias, e.Addr, e.Got.Type(), ssh.FingerprintSHA256(e.Got), e.File, pinned)
}

// HostKeyUnknownError is returned when no key is pinned for the machine and
// trust on first use is off.
type HostKeyUnknownError struct {
	File  string
	Alias string
	Addr  string
	Got   ssh.PublicKey
}

func (e *HostKeyUnknownError) Error() string {
	return fmt.Sprintf("no host key is pinned for %q in %q; the server at %s presented %s %s",
		e.Alias, e.File, e.Addr, e.Got.Type(), ssh.FingerprintSHA256(e.Got))
}

func (p *Pinning) validate() error {
	if p.File == "" {
		return errors.New("known_hosts file for host key pinning is not set")
	}
	if !aliasPattern.MatchString(p.Alias) {
		return fmt.Errorf("host key alias %q must be letters, digits, '.', '_' or '-'", p.Alias)
	}
	return nil
}

// HostKeyCallback returns the callback for WaitOptions.HostKeyCallback.
func (p *Pinning) HostKeyCallback() ssh.HostKeyCallback {
	return func(_ string, remote net.Addr, key ssh.PublicKey) error {
		return p.check(remote, key)
	}
}

func (p *Pinning) check(remote net.Addr, key ssh.PublicKey) error {
	if err := p.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()

	addr := "unknown address"
	if remote != nil {
		addr = remote.String()
	}
	cb, err := p.database()
	if err != nil {
		return err
	}
	if cb != nil {
		// Checking by alias with the default port matches the entry
		// written under the bare alias, whatever the real port is.
		kerr := cb(net.JoinHostPort(p.Alias, "22"), remote, key)
		var keyErr *knownhosts.KeyError
		switch {
		case kerr == nil:
			return nil
		case errors.As(kerr, &keyErr) && len(keyErr.Want) > 0:
			pinned := make([]ssh.PublicKey, len(keyErr.Want))
			for i, k := range keyErr.Want {
				pinned[i] = k.Key
			}
			return dberr.WithHint(
				&HostKeyChangedError{File: p.File, Alias: p.Alias, Addr: addr, Got: key, Pinned: pinned},
				fmt.Sprintf("if the VM was re-created, run \"devbundle destroy\" and \"devbundle up\", or delete %q to pin the new key; otherwise something other than the machine answers on %s: do not use it", p.File, addr))
		case errors.As(kerr, &keyErr):
			// No entry for the alias: unknown, handled below.
		default:
			return fmt.Errorf("check host key of %q against %q: %w", p.Alias, p.File, kerr)
		}
	}
	if !p.TrustOnFirstUse {
		return dberr.WithHint(
			&HostKeyUnknownError{File: p.File, Alias: p.Alias, Addr: addr, Got: key},
			"the machine's host key is pinned when \"devbundle up\" first boots it: run \"devbundle destroy\" and \"devbundle up\" to start over")
	}
	return p.record(key)
}

// database loads File with the knownhosts package; a missing file gives a
// nil callback and no error.
func (p *Pinning) database() (ssh.HostKeyCallback, error) {
	cb, err := knownhosts.New(p.File)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, dberr.WithHint(fmt.Errorf("known hosts file %q cannot be read: %w", p.File, err),
			fmt.Sprintf("repair or delete %q (deleting it means the next connection is refused until \"devbundle destroy\" and \"devbundle up\")", p.File))
	}
	return cb, nil
}

// PinnedKeys lists the host keys File pins for Alias (none when the file
// is missing).
func (p *Pinning) PinnedKeys() ([]ssh.PublicKey, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cb, err := p.database()
	if cb == nil || err != nil {
		return nil, err
	}
	// Asking about a key nobody holds makes the database list the keys it
	// knows for the alias (plain and hashed entries alike).
	probe, err := ssh.NewPublicKey(ed25519.PublicKey(make([]byte, ed25519.PublicKeySize)))
	if err != nil {
		return nil, err
	}
	kerr := cb(net.JoinHostPort(p.Alias, "22"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}, probe)
	var keyErr *knownhosts.KeyError
	if !errors.As(kerr, &keyErr) {
		return nil, nil
	}
	keys := make([]ssh.PublicKey, len(keyErr.Want))
	for i, k := range keyErr.Want {
		keys[i] = k.Key
	}
	return keys, nil
}

// HostKeyAlgorithms returns the host key algorithms of the pinned keys, for
// WaitOptions.HostKeyAlgorithms, so that a server with several host keys
// presents the pinned one. It returns nil when nothing is pinned yet.
func (p *Pinning) HostKeyAlgorithms() ([]string, error) {
	keys, err := p.PinnedKeys()
	if err != nil {
		return nil, err
	}
	var algos []string
	for _, k := range keys {
		for _, a := range hostKeyAlgorithmsFor(k.Type()) {
			if !slices.Contains(algos, a) {
				algos = append(algos, a)
			}
		}
	}
	return algos, nil
}

func hostKeyAlgorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256}
	}
	return []string{keyType}
}

// record appends the key for Alias to File, atomically.
func (p *Pinning) record(key ssh.PublicKey) error {
	old, err := os.ReadFile(p.File)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("read known hosts %q: %w", p.File, err)
	}
	if len(old) > 0 && !bytes.HasSuffix(old, []byte("\n")) {
		old = append(old, '\n')
	}
	line := knownhosts.Line([]string{p.Alias}, key) + "\n"
	if err := os.MkdirAll(filepath.Dir(p.File), 0o700); err != nil {
		return fmt.Errorf("pin host key: %w", err)
	}
	if err := atomicfile.WriteFile(p.File, append(old, line...), 0o600); err != nil {
		return fmt.Errorf("pin host key: %w", err)
	}
	return nil
}
