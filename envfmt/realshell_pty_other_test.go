//go:build unix && !linux

package envfmt

import (
	"context"
	"errors"
)

// runTerminal is implemented for Linux only (it opens /dev/ptmx directly).
func runTerminal(context.Context, string, string, []string, []step) (string, error) {
	return "", errors.New("the terminal mode of the real-shell test runs on Linux only")
}
