//go:build linux

package envfmt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns the master side of a new pseudo-terminal and its
// subsidiary side, sized 40x200.
func openPTY() (master, tty *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty number: %w", err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 200}); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("pty size: %w", err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, tty, nil
}

// lockedBuffer collects the terminal's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runTerminal starts bin as an interactive shell on a pseudo-terminal (its
// controlling terminal, in its own session) and types each step's line,
// waiting for the file a step creates before typing on.
func runTerminal(ctx context.Context, bin, dir string, env []string, steps []step) (string, error) {
	master, tty, err := openPTY()
	if err != nil {
		return "", err
	}
	defer master.Close()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		tty.Close()
		return "", err
	}
	tty.Close()
	var out lockedBuffer
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(&out, master) // ends with EIO once the shell exits
	}()

	typeLine := func(line string) error {
		_, err := master.WriteString(line + "\r")
		return err
	}
	waitFile := func(path string, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(path); err == nil {
				time.Sleep(50 * time.Millisecond) // let the writer finish
				return true
			}
			time.Sleep(20 * time.Millisecond)
		}
		return false
	}

	// The line editor may drop what is typed before it starts: type a
	// probe until the shell runs it.
	ready := dir + "/ready"
	err = errors.New("the shell never ran a command typed on its terminal")
	for i := 0; i < 50 && ctx.Err() == nil; i++ {
		if typeLine("echo ready > "+ready) != nil {
			break
		}
		if waitFile(ready, 300*time.Millisecond) {
			err = nil
			break
		}
	}
	for _, s := range steps {
		if err != nil {
			break
		}
		if err = typeLine(s.line); err != nil {
			break
		}
		if s.waitFor != "" && !waitFile(s.waitFor, 20*time.Second) {
			err = fmt.Errorf("%q was not created after typing %q", s.waitFor, s.line)
		}
	}
	if err == nil {
		err = typeLine("exit")
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case werr := <-done:
		if err == nil && werr != nil {
			err = werr
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		if err == nil {
			err = errors.New("the shell did not exit after `exit`")
		}
	}
	master.Close()
	<-copied
	return "terminal output:\n" + out.String(), err
}
