//go:build windows

package sshc

import (
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/term"
)

// resizePoll is how often the console size is checked: Windows consoles
// have no resize signal.
const resizePoll = 250 * time.Millisecond

// watchResize calls resize with the console's new width and height each
// time it changes, until the returned stop is called.
func watchResize(fd int, resize func(w, h int)) (stop func()) {
	done := make(chan struct{})
	go func() {
		lastW, lastH, _ := term.GetSize(fd)
		ticker := time.NewTicker(resizePoll)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
				w, h, err := term.GetSize(fd)
				if err == nil && (w != lastW || h != lastH) {
					lastW, lastH = w, h
					resize(w, h)
				}
			}
		}
	}()
	return func() { close(done) }
}

// enableVirtualTerminal makes the console interpret the ANSI escape
// sequences a remote shell sends, and returns how to undo it.
func enableVirtualTerminal(fd int) (restore func(), err error) {
	h := windows.Handle(fd)
	var mode uint32
	if err := windows.GetConsoleMode(h, &mode); err != nil {
		return nil, err
	}
	want := mode | windows.ENABLE_VIRTUAL_TERMINAL_PROCESSING | windows.ENABLE_PROCESSED_OUTPUT
	if want == mode {
		return func() {}, nil
	}
	if err := windows.SetConsoleMode(h, want); err != nil {
		return nil, err
	}
	return func() { _ = windows.SetConsoleMode(h, mode) }, nil
}
