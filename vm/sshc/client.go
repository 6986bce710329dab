package sshc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Client is a logged-in SSH connection to a machine. It is safe for
// concurrent use: every Run, Output, Upload, Shell and DialTCP opens its own
// channel.
type Client struct {
	ssh     *ssh.Client
	addr    string
	user    string
	authKey ssh.PublicKey

	closeOnce sync.Once
	closeErr  error
	done      chan struct{}
	// also are closed after the connection (the hop it runs through).
	also []io.Closer
}

// AlsoClose makes Close close cl too, after the connection: the SSH
// connection to a hop that the client's connection runs through.
func (c *Client) AlsoClose(cl io.Closer) { c.also = append(c.also, cl) }

// Addr is the address the client connected to.
func (c *Client) Addr() string { return c.addr }

// User is the user the client logged in as.
func (c *Client) User() string { return c.user }

// AuthKey is the public half of the key the server accepted, or nil when
// it is unknown.
func (c *Client) AuthKey() ssh.PublicKey { return c.authKey }

// Close closes the connection and every session on it.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		if c.done != nil {
			close(c.done)
		}
		c.closeErr = c.ssh.Close()
		for _, cl := range c.also {
			_ = cl.Close()
		}
	})
	return c.closeErr
}

// Wait blocks until the connection ends (closed by either side) and
// returns why.
func (c *Client) Wait() error { return c.ssh.Wait() }

// startKeepAlive sends keepalive requests every interval and closes the
// connection when the server has not answered one within two intervals,
// so commands on a machine that vanished fail instead of hanging.
func (c *Client) startKeepAlive(interval time.Duration) {
	c.done = make(chan struct{})
	if interval < 0 {
		return
	}
	interval = orDefault(interval, DefaultKeepAlive)
	go func() {
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-ticker.C:
			}
			answered := make(chan struct{})
			go func() {
				// The reply's content does not matter: OpenSSH answers
				// unknown requests with a failure, which is an answer.
				_, _, _ = c.ssh.SendRequest("keepalive@openssh.com", true, nil)
				close(answered)
			}()
			select {
			case <-answered:
			case <-c.done:
				return
			case <-time.After(2 * interval):
				_ = c.ssh.Close()
				return
			}
		}
	}()
}

// RunOptions are the streams of a command. Nil Stdin sends nothing (the
// command sees end of input); nil Stdout or Stderr discards that output.
type RunOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Run runs cmd in the guest through the login user's shell and returns its
// exit status. A non-zero status is not an error: err is set only when the
// command could not be started or finished (connection lost, ctx done). A
// command killed by a signal reports 128 plus the signal's number, as
// shells do. When ctx ends, the command is sent SIGKILL, the session is
// closed, and Run returns -1 with an error wrapping ctx.Err().
func (c *Client) Run(ctx context.Context, cmd string, opts RunOptions) (exitCode int, err error) {
	if err := ctx.Err(); err != nil {
		return -1, fmt.Errorf("run %q on %s: %w", cmd, c.addr, err)
	}
	sess, err := c.ssh.NewSession()
	if err != nil {
		return -1, fmt.Errorf("open ssh session on %s: %w", c.addr, err)
	}
	defer func() { _ = sess.Close() }()
	sess.Stdin = opts.Stdin
	sess.Stdout = opts.Stdout
	sess.Stderr = opts.Stderr

	stop := context.AfterFunc(ctx, func() {
		_ = sess.Signal(ssh.SIGKILL)
		_ = sess.Close()
	})
	runErr := sess.Run(cmd)
	if !stop() {
		return -1, fmt.Errorf("run %q on %s: %w", cmd, c.addr, ctx.Err())
	}
	return exitStatus(cmd, c.addr, runErr)
}

// exitStatus turns a session's result into an exit code and an error that
// is nil whenever the command ran to its end.
func exitStatus(cmd, addr string, err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var exitErr *ssh.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitStatus(), nil
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) {
		return -1, fmt.Errorf("run %q on %s: the connection ended before the command reported its exit status: %w", cmd, addr, err)
	}
	return -1, fmt.Errorf("run %q on %s: %w", cmd, addr, err)
}

// CommandError is returned by Output for a command that exited non-zero.
type CommandError struct {
	Cmd      string
	Addr     string
	ExitCode int
	Stderr   string // trimmed, at most a few KiB
}

func (e *CommandError) Error() string {
	msg := fmt.Sprintf("command %q on %s exited with status %d", e.Cmd, e.Addr, e.ExitCode)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

const maxStderrInError = 4 << 10

// Output runs cmd and returns its standard output. A non-zero exit status
// is a *CommandError that carries the command's standard error.
func (c *Client) Output(ctx context.Context, cmd string) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	code, err := c.Run(ctx, cmd, RunOptions{Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return stdout.Bytes(), err
	}
	if code != 0 {
		return stdout.Bytes(), &CommandError{
			Cmd: cmd, Addr: c.addr, ExitCode: code,
			Stderr: trimForError(stderr.String()),
		}
	}
	return stdout.Bytes(), nil
}

func trimForError(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxStderrInError {
		s = "..." + s[len(s)-maxStderrInError:]
	}
	return s
}

// DialTCP opens a TCP connection from the guest to addr ("host:port", as
// the guest resolves it) through the SSH connection: a port tunnel.
func (c *Client) DialTCP(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := c.ssh.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("open a tunnel to %q through ssh on %s: %w", addr, c.addr, err)
	}
	return conn, nil
}
