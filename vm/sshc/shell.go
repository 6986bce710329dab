package sshc

import (
	"context"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// ShellOptions describe an interactive session.
type ShellOptions struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Command runs instead of the login shell; with a terminal it still
	// gets a PTY (like `ssh -t host cmd`).
	Command string
	// Term is the TERM the PTY announces; empty means "xterm-256color".
	// Pass the user's $TERM.
	Term string
}

// fdFile is what *os.File offers: a descriptor (a handle on Windows).
type fdFile interface{ Fd() uintptr }

// Shell runs an interactive session: the login shell, or opts.Command.
// When Stdin is a terminal, the local terminal is put in raw mode for the
// session's duration, the guest gets a PTY of the same size, and size
// changes follow. Otherwise the streams are plain pipes. It returns the
// remote exit status like Run; when ctx ends the session is closed.
func (c *Client) Shell(ctx context.Context, opts ShellOptions) (exitCode int, err error) {
	sess, err := c.ssh.NewSession()
	if err != nil {
		return -1, fmt.Errorf("open ssh session on %s: %w", c.addr, err)
	}
	defer func() { _ = sess.Close() }()
	sess.Stdin = opts.Stdin
	sess.Stdout = opts.Stdout
	sess.Stderr = opts.Stderr

	if inFd, ok := terminalFd(opts.Stdin); ok {
		sizeFd := inFd
		if outFd, ok := terminalFd(opts.Stdout); ok {
			sizeFd = outFd
			// Without escape sequence support (very old Windows consoles)
			// the session still works, only less prettily.
			if restoreOut, err := enableVirtualTerminal(outFd); err == nil {
				defer restoreOut()
			}
		}
		w, h, err := term.GetSize(sizeFd)
		if err != nil || w <= 0 || h <= 0 {
			w, h = 80, 24
		}
		termName := opts.Term
		if termName == "" {
			termName = "xterm-256color"
		}
		modes := ssh.TerminalModes{
			ssh.ECHO:          1,
			ssh.TTY_OP_ISPEED: 38400,
			ssh.TTY_OP_OSPEED: 38400,
		}
		if err := sess.RequestPty(termName, h, w, modes); err != nil {
			return -1, fmt.Errorf("request a terminal on %s: %w", c.addr, err)
		}
		state, err := term.MakeRaw(inFd)
		if err != nil {
			return -1, fmt.Errorf("put the terminal in raw mode: %w", err)
		}
		defer func() { _ = term.Restore(inFd, state) }()
		stopResize := watchResize(sizeFd, func(w, h int) { _ = sess.WindowChange(h, w) })
		defer stopResize()
	}

	if opts.Command != "" {
		err = sess.Start(opts.Command)
	} else {
		err = sess.Shell()
	}
	if err != nil {
		return -1, fmt.Errorf("start a shell on %s: %w", c.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	waitErr := sess.Wait()
	if !stop() {
		return -1, fmt.Errorf("shell on %s: %w", c.addr, ctx.Err())
	}
	what := opts.Command
	if what == "" {
		what = "login shell"
	}
	return exitStatus(what, c.addr, waitErr)
}

// terminalFd returns the descriptor of v when it is a terminal.
func terminalFd(v any) (int, bool) {
	f, ok := v.(fdFile)
	if !ok {
		return 0, false
	}
	if of, ok := v.(*os.File); ok && of == nil {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}
