// Package filelock provides an exclusive lock on a file that serialises
// processes on Linux, macOS and Windows.
//
// The lock belongs to the open file, not to the process: two Lock calls on
// one path in the same process also exclude each other. Lock files are left
// in place after Unlock; removing them would let a waiter lock a file that
// no longer has a name.
package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"
)

// Unlock releases a lock taken by Lock or TryLock. Calling it more than once
// returns an error and does nothing else.
type Unlock func() error

// errWouldBlock is returned by the OS-specific tryLock when another holder
// has the lock.
var errWouldBlock = errors.New("lock is held elsewhere")

// Lock blocks until it holds an exclusive lock on path, creating the file
// when it does not exist, or until ctx ends. It polls, so it never leaves a
// blocked system call behind when ctx is cancelled.
func Lock(ctx context.Context, path string) (Unlock, error) {
	wait := 5 * time.Millisecond
	for {
		unlock, ok, err := TryLock(path)
		if err != nil {
			return nil, err
		}
		if ok {
			return unlock, nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, fmt.Errorf("wait for lock %q (another devbundle process is using it): %w", path, ctx.Err())
		case <-timer.C:
		}
		if wait < 200*time.Millisecond {
			wait *= 2
		}
	}
}

// TryLock takes the lock on path if it is free and reports whether it did.
// ok is false, with a nil error, when someone else holds it.
func TryLock(path string) (unlock Unlock, ok bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, fmt.Errorf("open lock file %q: %w", path, err)
	}
	if err := tryLock(f); err != nil {
		_ = f.Close()
		if errors.Is(err, errWouldBlock) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %q: %w", path, err)
	}
	released := false
	return func() error {
		if released {
			return fmt.Errorf("unlock %q: already unlocked", path)
		}
		released = true
		uerr := unlockFile(f)
		cerr := f.Close()
		if uerr != nil {
			return fmt.Errorf("unlock %q: %w", path, uerr)
		}
		if cerr != nil {
			return fmt.Errorf("unlock %q: %w", path, cerr)
		}
		return nil
	}, true, nil
}
