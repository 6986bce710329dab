package sshc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/devbundle/devbundle/internal/dberr"
)

// Defaults used when WaitOptions leaves a field zero.
const (
	DefaultWaitTimeout      = 5 * time.Minute
	DefaultDialTimeout      = 5 * time.Second
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultMaxBackoff       = 2 * time.Second
	DefaultKeepAlive        = 15 * time.Second
	firstBackoff            = 100 * time.Millisecond
)

// WaitOptions says where to reach a guest's sshd and how to log in.
type WaitOptions struct {
	// Addr is host:port of the guest's sshd, e.g. "127.0.0.1:2222".
	Addr string
	// User is the login user, e.g. "vagrant".
	User string
	// Signers are the private keys offered, in order. The one the server
	// accepted is reported by (*Client).AuthKey.
	Signers []ssh.Signer
	// HostKeyCallback checks the server's host key. Required: use
	// (*Pinning).HostKeyCallback for machines.
	HostKeyCallback ssh.HostKeyCallback
	// HostKeyAlgorithms restricts and orders the host key algorithms the
	// client accepts; set it to (*Pinning).HostKeyAlgorithms so that a
	// server holding several host keys presents the pinned one. Nil keeps
	// the library's default order.
	HostKeyAlgorithms []string
	// Timeout bounds the whole wait. Zero uses the context's deadline, or
	// DefaultWaitTimeout when the context has none.
	Timeout time.Duration
	// DialTimeout bounds one TCP connect (DefaultDialTimeout).
	DialTimeout time.Duration
	// HandshakeTimeout bounds one SSH handshake with authentication
	// (DefaultHandshakeTimeout). A forwarded port whose guest is still
	// booting accepts the connection and then says nothing: this is what
	// ends such an attempt.
	HandshakeTimeout time.Duration
	// MaxBackoff caps the pause between attempts (DefaultMaxBackoff).
	MaxBackoff time.Duration
	// KeepAlive is the interval of keepalive requests on the established
	// connection; a server that misses two in a row is considered gone
	// and the connection is closed. Zero uses DefaultKeepAlive, a negative
	// value turns keepalives off.
	KeepAlive time.Duration
	// Hint is added to the timeout error's hint, e.g. where the machine's
	// console log is.
	Hint string
	// Dial, when set, opens the TCP connection to Addr instead of a direct
	// connect: through a Hop's SSH connection for a remote libvirt host.
	Dial DialFunc
	// OnAttempt, when set, is called after every failed attempt with its
	// number (from 1) and error, e.g. for a debug log.
	OnAttempt func(attempt int, err error)
}

// WaitError is returned by Wait when the wait ended before sshd answered
// and accepted a key.
type WaitError struct {
	Addr     string
	User     string
	Waited   time.Duration
	Attempts int
	// Last is the error of the last attempt (nil when none was made).
	Last error
	// Cause is why the wait ended: the context's error.
	Cause error
}

func (e *WaitError) Error() string {
	what := fmt.Sprintf("ssh to %q as user %q", e.Addr, e.User)
	var b strings.Builder
	if errors.Is(e.Cause, context.Canceled) {
		fmt.Fprintf(&b, "waiting for %s cancelled after %s", what, e.Waited.Round(time.Millisecond))
	} else {
		fmt.Fprintf(&b, "timed out after %s waiting for %s", e.Waited.Round(time.Millisecond), what)
	}
	fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	if e.Last != nil {
		fmt.Fprintf(&b, ": %s: %v", describeAttemptError(e.Last), e.Last)
	}
	return b.String()
}

// Unwrap gives both the context's error and the last attempt's error.
func (e *WaitError) Unwrap() []error {
	var errs []error
	if e.Cause != nil {
		errs = append(errs, e.Cause)
	}
	if e.Last != nil {
		errs = append(errs, e.Last)
	}
	return errs
}

// Wait connects to opts.Addr and logs in as opts.User, retrying with
// exponential backoff (capped at opts.MaxBackoff) until it succeeds, the
// host key is refused (a *HostKeyChangedError or *HostKeyUnknownError, at
// once, without retrying), or the deadline passes (a *WaitError carrying a
// hint of what to try).
func Wait(ctx context.Context, opts WaitOptions) (*Client, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if _, ok := ctx.Deadline(); !ok && timeout == 0 {
		timeout = DefaultWaitTimeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	maxBackoff := orDefault(opts.MaxBackoff, DefaultMaxBackoff)

	start := time.Now()
	backoff := firstBackoff
	var last error
	attempts := 0
	for {
		if ctx.Err() == nil {
			attempts++
			c, err := dialOnce(ctx, opts)
			if err == nil {
				return c, nil
			}
			if isHostKeyError(err) {
				return nil, err
			}
			if ctx.Err() == nil || last == nil {
				last = err
			}
			if opts.OnAttempt != nil {
				opts.OnAttempt(attempts, err)
			}
		}
		timer := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			werr := &WaitError{
				Addr: opts.Addr, User: opts.User,
				Waited: time.Since(start), Attempts: attempts,
				Last: last, Cause: ctx.Err(),
			}
			return nil, dberr.WithHint(werr, waitHint(werr, opts.Hint))
		case <-timer.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

func (o *WaitOptions) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		errs = append(errs, fmt.Errorf("ssh address %q is not host:port: %w", o.Addr, err))
	}
	if o.User == "" {
		errs = append(errs, errors.New("ssh user is empty"))
	}
	if len(o.Signers) == 0 {
		errs = append(errs, errors.New("no ssh private key given to log in with"))
	}
	if o.HostKeyCallback == nil {
		errs = append(errs, errors.New("no ssh host key callback given (use a Pinning)"))
	}
	return errors.Join(errs...)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// dialOnce makes one connection attempt: TCP connect, SSH handshake and
// authentication, all bounded by ctx and the per-attempt timeouts.
func dialOnce(ctx context.Context, opts WaitOptions) (*Client, error) {
	dialTimeout := orDefault(opts.DialTimeout, DefaultDialTimeout)
	dial := opts.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: dialTimeout}).DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	conn, err := dial(dctx, "tcp", opts.Addr)
	cancel()
	if err != nil {
		return nil, err
	}
	hsTimeout := orDefault(opts.HandshakeTimeout, DefaultHandshakeTimeout)
	// Closing the connection is the only way to interrupt a handshake: at
	// ctx's end, or after hsTimeout (a deadline would do, but a channel
	// through a hop's SSH connection has none).
	hsCtx, hsCancel := context.WithTimeout(ctx, hsTimeout)
	defer hsCancel()
	stop := context.AfterFunc(hsCtx, func() { _ = conn.Close() })

	signers := make([]ssh.Signer, len(opts.Signers))
	used := make([]bool, len(opts.Signers))
	for i, s := range opts.Signers {
		signers[i] = newRecordingSigner(s, &used[i])
	}
	cfg := &ssh.ClientConfig{
		User:              opts.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signers...)},
		HostKeyCallback:   opts.HostKeyCallback,
		HostKeyAlgorithms: opts.HostKeyAlgorithms,
	}
	sconn, chans, reqs, err := ssh.NewClientConn(conn, opts.Addr, cfg)
	if !stop() {
		// ctx or the handshake's time ended and the connection is closed.
		if err == nil {
			_ = sconn.Close()
		}
		_ = conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("no SSH handshake within %s: %w", hsTimeout, os.ErrDeadlineExceeded)
	}
	if err != nil {
		_ = conn.Close()
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w (the server closed the connection before the handshake finished)", err)
		}
		return nil, err
	}
	// The handshake goroutine has finished: used is safe to read.
	var authKey ssh.PublicKey
	for i, u := range used {
		if u {
			authKey = opts.Signers[i].PublicKey()
			break
		}
	}
	c := &Client{
		ssh:     ssh.NewClient(sconn, chans, reqs),
		addr:    opts.Addr,
		user:    opts.User,
		authKey: authKey,
	}
	c.startKeepAlive(opts.KeepAlive)
	return c, nil
}

func isHostKeyError(err error) bool {
	var changed *HostKeyChangedError
	var unknown *HostKeyUnknownError
	return errors.As(err, &changed) || errors.As(err, &unknown)
}

// isAuthError reports whether err is the client's "no key was accepted".
// golang.org/x/crypto/ssh has no error type for it.
func isAuthError(err error) bool {
	return err != nil && strings.Contains(err.Error(), "ssh: unable to authenticate")
}

// describeAttemptError says in words what an attempt's error means.
func describeAttemptError(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens on that port yet"
	case isAuthError(err):
		return "sshd answered but accepted none of the keys"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "sshd did not answer in time"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "the connection was closed before sshd answered"
	default:
		return "last error"
	}
}

func waitHint(e *WaitError, extra string) string {
	var hint string
	switch {
	case isAuthError(e.Last):
		hint = fmt.Sprintf("the guest's sshd refuses the key for user %q: if the machine was created by another tool or its key was lost, run \"devbundle destroy\" and \"devbundle up\"; for a box with its own login key, set DEVBUNDLE_INSECURE_KEY_FILE", e.User)
	case errors.Is(e.Cause, context.Canceled):
		hint = "run the command again to resume"
	default:
		hint = "the machine may still be booting or its sshd is not running: run \"devbundle up\" again to wait longer, or check the machine with \"devbundle status\""
	}
	if extra != "" {
		hint += "; " + extra
	}
	return hint
}
