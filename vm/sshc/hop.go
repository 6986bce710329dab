package sshc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Hop is an SSH server the host reaches a machine's ports through: the
// host of a remote libvirt daemon (qemu+ssh://user@host/system), whose
// forwards bind that host's loopback, not ours.
type Hop struct {
	User string `json:"user"`
	// Addr is host:port of the hop's sshd.
	Addr string `json:"addr"`
	// KeyFile is the private key to log in with; empty tries the SSH agent
	// and the usual files in ~/.ssh.
	KeyFile string `json:"key_file,omitempty"`
	// KnownHostsFile holds the hop's host key (~/.ssh/known_hosts when
	// empty). An unknown or different key is refused.
	KnownHostsFile string `json:"known_hosts_file,omitempty"`
	// NoVerify skips the host key check (the URI asked for no_verify=1).
	NoVerify bool `json:"no_verify,omitempty"`
}

// DialFunc opens a connection the way net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// hopTimeout bounds the connection and handshake to a hop.
const hopTimeout = 20 * time.Second

// DialHop logs in to the hop. Its Dial reaches addresses as the hop sees
// them ("127.0.0.1:<forward>"). getenv supplies SSH_AUTH_SOCK.
func DialHop(ctx context.Context, h Hop, getenv func(string) string) (*ssh.Client, error) {
	home, _ := os.UserHomeDir()
	known := h.KnownHostsFile
	if known == "" && home != "" {
		known = filepath.Join(home, ".ssh", "known_hosts")
	}
	var hostKey ssh.HostKeyCallback
	if h.NoVerify {
		hostKey = ssh.InsecureIgnoreHostKey() //nolint:gosec // the libvirt URI asked for no_verify
	} else {
		cb, err := knownhosts.New(known)
		if err != nil {
			return nil, fmt.Errorf("read the host keys of %s from %q: %w; log in once with ssh to record it", h.Addr, known, err)
		}
		hostKey = cb
	}
	signers, closeAgent, err := hopSigners(h, home, getenv)
	if err != nil {
		return nil, err
	}
	defer closeAgent()
	cfg := &ssh.ClientConfig{
		User:            h.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback: hostKey,
		Timeout:         hopTimeout,
	}
	d := net.Dialer{Timeout: hopTimeout}
	conn, err := d.DialContext(ctx, "tcp", h.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to the libvirt host %s: %w", h.Addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(hopTimeout))
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	sconn, chans, reqs, err := ssh.NewClientConn(conn, h.Addr, cfg)
	if !stop() {
		if err == nil {
			_ = sconn.Close()
		}
		return nil, ctx.Err()
	}
	if err != nil {
		_ = conn.Close()
		var keyErr *knownhosts.KeyError
		if errors.As(err, &keyErr) {
			if len(keyErr.Want) == 0 {
				return nil, fmt.Errorf("the libvirt host %s is not in %q; log in once with \"ssh -p PORT %s@HOST\" to record its key", h.Addr, known, h.User)
			}
			return nil, fmt.Errorf("the libvirt host %s presented a host key that differs from the one in %q: refusing to connect", h.Addr, known)
		}
		return nil, fmt.Errorf("log in to the libvirt host %s as %q: %w", h.Addr, h.User, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(sconn, chans, reqs), nil
}

// hopSigners gathers the keys to offer a hop: its key file, else the SSH
// agent's keys and the usual key files.
func hopSigners(h Hop, home string, getenv func(string) string) ([]ssh.Signer, func(), error) {
	none := func() {}
	if h.KeyFile != "" {
		s, err := readSigner(h.KeyFile)
		if err != nil {
			return nil, none, err
		}
		return []ssh.Signer{s}, none, nil
	}
	var signers []ssh.Signer
	closeAgent := none
	if sock := getenv("SSH_AUTH_SOCK"); sock != "" {
		if conn, err := (&net.Dialer{Timeout: 5 * time.Second}).Dial("unix", sock); err == nil {
			closeAgent = func() { _ = conn.Close() }
			if ss, err := agent.NewClient(conn).Signers(); err == nil {
				signers = append(signers, ss...)
			}
		}
	}
	if home != "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			if s, err := readSigner(filepath.Join(home, ".ssh", name)); err == nil {
				signers = append(signers, s)
			}
		}
	}
	if len(signers) == 0 {
		return nil, none, fmt.Errorf("no SSH key to log in to the libvirt host %s with: start an SSH agent or add ?keyfile=PATH to the libvirt URI", h.Addr)
	}
	return signers, closeAgent, nil
}

func readSigner(path string) (ssh.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read SSH key: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("SSH key %q: %w (a key with a passphrase must be loaded into an SSH agent)", path, err)
	}
	return s, nil
}
