package sshc

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: what a user's terminal looks like
// to devbundle.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("SKIPPED: no pseudo-terminals here: %v", err)
	}
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slave.Close(); _ = master.Close() })
	return master, slave
}

func TestShellWithTerminal(t *testing.T) {
	f := newFixture(t)
	c := f.mustLogin(t, f.insecure)
	master, slave := openPTY(t)
	sfd := int(slave.Fd())
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 31, Col: 101}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}

	var screen lockedBuffer
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			_, _ = screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(screen.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q; it shows %q", s, screen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := c.Shell(context.Background(), ShellOptions{
			Stdin: slave, Stdout: slave, Stderr: slave, Term: "vt100",
			Command: `tty; echo "T=$TERM"; echo "S1=$(stty size)"; read x; echo "S2=$(stty size)"; exit 6`,
		})
		done <- result{code, err}
	}()

	waitFor("S1=31 101")
	// The user resizes the window.
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if _, err := master.Write([]byte("go\r")); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.code != 6 {
		t.Fatalf("Shell = %d, %v; screen %q", r.code, r.err, screen.String())
	}
	waitFor("S2=40 120")
	out := screen.String()
	for _, want := range []string{"/dev/pts/", "T=vt100"} {
		if !strings.Contains(out, want) {
			t.Errorf("screen %q lacks %q", out, want)
		}
	}
	after, err := unix.IoctlGetTermios(sfd, unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Fatal("the local terminal was left in raw mode")
	}
}
