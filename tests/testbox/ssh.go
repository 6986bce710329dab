package testbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/crypto/ssh"
)

// SSHOptions say how to reach a booting guest's sshd.
type SSHOptions struct {
	Addr   string     // host:port, for example a forward on 127.0.0.1
	User   string     // defaults to User
	Signer ssh.Signer // the key the guest authorizes
	// HostKey is called with the key the guest presents on the connection
	// that succeeds; nil accepts any (a fresh VM's host key is unknown).
	HostKey func(ssh.PublicKey) error
	// AttemptTimeout bounds one connection and handshake; defaults to 20s.
	AttemptTimeout time.Duration
}

// WaitSSH connects to a guest that may still be booting: it retries with a
// growing pause (at most one second, to keep boot-time figures close) until
// a session is established or ctx ends, and then returns the client.
func WaitSSH(ctx context.Context, opts SSHOptions) (*ssh.Client, error) {
	if opts.User == "" {
		opts.User = User
	}
	if opts.AttemptTimeout == 0 {
		opts.AttemptTimeout = 20 * time.Second
	}
	pause := 100 * time.Millisecond
	attempts := 0
	for {
		attempts++
		client, err := dialSSH(ctx, opts)
		if err == nil {
			return client, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("ssh to %s@%s not ready after %d attempts: %w (last attempt: %w)", opts.User, opts.Addr, attempts, ctx.Err(), err)
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}

func dialSSH(ctx context.Context, opts SSHOptions) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, opts.AttemptTimeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("connecting to %q: %w", opts.Addr, err)
	}
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		conn.Close()
		return nil, fmt.Errorf("setting a handshake deadline on %q: %w", opts.Addr, err)
	}
	hostKey := func(string, net.Addr, ssh.PublicKey) error { return nil }
	if opts.HostKey != nil {
		hostKey = func(_ string, _ net.Addr, key ssh.PublicKey) error { return opts.HostKey(key) }
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, opts.Addr, &ssh.ClientConfig{
		User:            opts.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(opts.Signer)},
		HostKeyCallback: hostKey,
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("ssh handshake with %q: %w", opts.Addr, err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("clearing the handshake deadline on %q: %w", opts.Addr, err)
	}
	return ssh.NewClient(c, chans, reqs), nil
}

// Run runs cmd in a new session on client and returns its standard output.
// A non-zero exit is an error carrying stderr. ctx ending closes the session.
func Run(ctx context.Context, client *ssh.Client, cmd string) (string, error) {
	session, err := client.NewSession()
	if err != nil {
		return "", fmt.Errorf("opening an ssh session for %q: %w", cmd, err)
	}
	defer session.Close()
	var stdout, stderr bytes.Buffer
	session.Stdout = &stdout
	session.Stderr = &stderr
	done := make(chan error, 1)
	go func() { done <- session.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		session.Close()
		err = <-done // the buffers are the session's until Run returns
		return stdout.String(), fmt.Errorf("running %q over ssh: %w (session: %w)", cmd, ctx.Err(), err)
	}
	if err != nil {
		var exit *ssh.ExitError
		if errors.As(err, &exit) {
			return stdout.String(), fmt.Errorf("%q exited with status %d: %s", cmd, exit.ExitStatus(), bytes.TrimSpace(stderr.Bytes()))
		}
		return stdout.String(), fmt.Errorf("running %q over ssh: %w", cmd, err)
	}
	return stdout.String(), nil
}
