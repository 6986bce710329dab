package virtualbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/devbundle/devbundle/vm"
)

// execFunc runs one program to its end and returns what it printed.
type execFunc func(ctx context.Context, path string, args []string) (stdout, stderr []byte, err error)

// runExec runs path with args through os/exec.
func runExec(ctx context.Context, path string, args []string) ([]byte, []byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.Bytes(), err
}

// vbm is the one seam through which the provider runs VBoxManage. It
// retries the errors VirtualBox reports while a VM's session is still
// being locked or unlocked (right after a power-off, for instance) and
// treats an "error:" line on stderr as a failure even when the exit status
// is 0, as VBoxManage sometimes exits 0 after printing one.
type vbm struct {
	path string
	exec execFunc
	// attempts is how many times a transient error is tried (5).
	attempts int
	// delay is the wait before the first retry; it grows by itself each
	// time (1 s, 2 s, 3 s, ...).
	delay time.Duration
}

// transient are substrings of VBoxManage errors worth retrying: the
// machine's session is being locked or unlocked, or an object is not
// ready yet.
var transient = []string{
	"VBOX_E_INVALID_OBJECT_STATE",
	"is already locked for a session",
	"is already locked by a session",
	"error: The object is not ready",
}

// vbmError is a failed VBoxManage run.
type vbmError struct {
	Args   []string
	Stdout string
	Stderr string
	Err    error // the exit status, or nil when it exited 0 with an error line
}

func (e *vbmError) Error() string {
	msg := errorLines(e.Stderr)
	if msg == "" {
		msg = strings.TrimSpace(e.Stderr)
	}
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	sub := "VBoxManage"
	if len(e.Args) > 0 {
		sub += " " + e.Args[0]
	}
	return fmt.Sprintf("%s: %s", sub, msg)
}

func (e *vbmError) Unwrap() error { return e.Err }

// errorLines joins the "error:" lines of VBoxManage's stderr, without the
// "VBoxManage: error: " prefix and without the "Context:" lines that only
// name VirtualBox's source lines.
func errorLines(stderr string) string {
	var out []string
	for _, line := range strings.Split(stderr, "\n") {
		line = strings.TrimSpace(line)
		_, rest, ok := strings.Cut(line, "error:")
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		if rest == "" || strings.HasPrefix(rest, "Context:") {
			continue
		}
		out = append(out, rest)
	}
	return strings.Join(out, "; ")
}

// hasErrorLine tells whether stderr carries an "error:" line.
func hasErrorLine(stderr string) bool {
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "error:") {
			return true
		}
	}
	return false
}

// isTransient tells whether err is worth running again.
func isTransient(err error) bool {
	var ve *vbmError
	if !errors.As(err, &ve) {
		return false
	}
	for _, s := range transient {
		if strings.Contains(ve.Stderr, s) {
			return true
		}
	}
	return false
}

// isNotFound tells whether VBoxManage said the machine (or medium) does
// not exist.
func isNotFound(err error) bool {
	var ve *vbmError
	if !errors.As(err, &ve) {
		return false
	}
	return strings.Contains(ve.Stderr, "VBOX_E_OBJECT_NOT_FOUND") ||
		strings.Contains(ve.Stderr, "Could not find a registered machine")
}

// isNotRunning tells whether controlvm refused because the machine is off.
func isNotRunning(err error) bool {
	var ve *vbmError
	return errors.As(err, &ve) && strings.Contains(ve.Stderr, "is not currently running")
}

// run runs VBoxManage with args and returns its stdout. A machine that
// does not exist comes back as an error wrapping vm.ErrNotFound.
func (v *vbm) run(ctx context.Context, args ...string) (string, error) {
	attempts := v.attempts
	if attempts < 1 {
		attempts = 5
	}
	delay := v.delay
	if delay <= 0 {
		delay = time.Second
	}
	run := v.exec
	if run == nil {
		run = runExec
	}
	for i := 1; ; i++ {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("VBoxManage %s: %w", strings.Join(args, " "), err)
		}
		stdout, stderr, err := run(ctx, v.path, args)
		if err == nil && !hasErrorLine(string(stderr)) {
			return string(stdout), nil
		}
		if ctx.Err() != nil {
			return "", fmt.Errorf("VBoxManage %s: %w", strings.Join(args, " "), ctx.Err())
		}
		ve := &vbmError{Args: args, Stdout: string(stdout), Stderr: string(stderr), Err: err}
		if isNotFound(ve) {
			return "", fmt.Errorf("%w: %w", ve, vm.ErrNotFound)
		}
		if i >= attempts || !isTransient(ve) {
			return "", ve
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (while waiting to retry: %w)", ve, ctx.Err())
		case <-time.After(time.Duration(i) * delay):
		}
	}
}
