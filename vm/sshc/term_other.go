//go:build !unix && !windows

package sshc

// watchResize does nothing where there is no way to learn of size changes.
func watchResize(int, func(w, h int)) (stop func()) { return func() {} }

func enableVirtualTerminal(int) (restore func(), err error) { return func() {}, nil }
