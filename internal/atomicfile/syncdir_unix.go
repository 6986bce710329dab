//go:build unix

package atomicfile

import "os"

// syncDir flushes the folder entry of a renamed file so the rename survives
// a crash. Errors are ignored: some filesystems do not support it and the
// file itself is already complete.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}
