//go:build !unix && !windows

package filelock

import (
	"errors"
	"os"
	"runtime"
)

func tryLock(*os.File) error {
	return errors.New("file locks are not supported on " + runtime.GOOS)
}

func unlockFile(*os.File) error { return nil }
