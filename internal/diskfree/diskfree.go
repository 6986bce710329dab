// Package diskfree reports the free space of the filesystem holding a path.
package diskfree

// Bytes returns the bytes available to this user on the filesystem that
// holds path.
func Bytes(path string) (uint64, error) { return bytesFree(path) }
