// Package dberr holds the error kinds that decide devbundle's exit codes.
//
// Packages deep in the tree wrap one of these sentinels (with %w) so the
// command layer can map them to the documented exit codes in one place,
// without the packages knowing about exit codes at all.
package dberr

import (
	"errors"
	"fmt"
)

var (
	// ErrUsage marks an error in how the command was called: unknown
	// command, bad flag, invalid argument. Exit code 1.
	ErrUsage = errors.New("usage error")
	// ErrMachineNotRunning marks a command that needs a running machine.
	// Exit code 3.
	ErrMachineNotRunning = errors.New("machine not running")
	// ErrServiceUnavailable marks a service that is unknown, not running,
	// or a command that could not be executed. Exit code 126.
	ErrServiceUnavailable = errors.New("service unavailable")
)

// Hinted is an error with a separate hint line: what the user can run or
// change to fix it.
type Hinted struct {
	Err  error
	Hint string
}

func (h *Hinted) Error() string { return h.Err.Error() }
func (h *Hinted) Unwrap() error { return h.Err }

// WithHint attaches a hint to err. A nil err stays nil.
func WithHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &Hinted{Err: err, Hint: hint}
}

// Hint returns the first hint found in err's chain, or "".
func Hint(err error) string {
	var h *Hinted
	if errors.As(err, &h) {
		return h.Hint
	}
	return ""
}

// kinded wraps a message with a kind sentinel while keeping the message
// as the user sees it.
type kinded struct {
	kind error
	err  error
}

func (k *kinded) Error() string   { return k.err.Error() }
func (k *kinded) Unwrap() []error { return []error{k.err, k.kind} }

// Usage returns an error of kind ErrUsage with the formatted message.
func Usage(format string, args ...any) error {
	return &kinded{kind: ErrUsage, err: fmt.Errorf(format, args...)}
}

// NotRunning returns the standard error for a machine that is not running.
func NotRunning(machine string) error {
	return &kinded{
		kind: ErrMachineNotRunning,
		err:  fmt.Errorf("machine %q is not running; run \"devbundle up\"", machine),
	}
}

// ServiceUnavailable returns an error of kind ErrServiceUnavailable.
func ServiceUnavailable(format string, args ...any) error {
	return &kinded{kind: ErrServiceUnavailable, err: fmt.Errorf(format, args...)}
}

// Exit codes, documented in README.md. Every command follows this table.
const (
	ExitOK                 = 0
	ExitError              = 1
	ExitMachineNotRunning  = 3
	ExitServiceUnavailable = 126
	ExitInterrupted        = 130
)

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, ErrMachineNotRunning):
		return ExitMachineNotRunning
	case errors.Is(err, ErrServiceUnavailable):
		return ExitServiceUnavailable
	case errors.Is(err, ErrInterrupted):
		return ExitInterrupted
	default:
		return ExitError
	}
}

// ErrInterrupted marks a command stopped by Ctrl-C (SIGINT). Exit code 130,
// as shells report for SIGINT.
var ErrInterrupted = errors.New("interrupted")
