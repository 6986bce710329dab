//go:build unix

package sshc

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// watchResize calls resize with the terminal's new width and height each
// time it changes (SIGWINCH), until the returned stop is called.
func watchResize(fd int, resize func(w, h int)) (stop func()) {
	ch := make(chan os.Signal, 1)
	done := make(chan struct{})
	signal.Notify(ch, syscall.SIGWINCH)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-ch:
				if w, h, err := term.GetSize(fd); err == nil {
					resize(w, h)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
	}
}

// enableVirtualTerminal is needed on Windows only: Unix terminals already
// interpret the escape sequences the guest sends.
func enableVirtualTerminal(int) (restore func(), err error) { return func() {}, nil }
