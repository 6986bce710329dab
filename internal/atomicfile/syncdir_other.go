//go:build !unix

package atomicfile

// syncDir does nothing where folders cannot be flushed (Windows flushes the
// rename with the file's metadata).
func syncDir(string) {}
