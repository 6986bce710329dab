// Package iox holds small I/O helpers shared by the download and archive
// code.
package iox

import "io"

// Fill reads into p until it is full or r fails. Unlike io.ReadFull, a
// clean end of the stream is reported as io.EOF even after a partial
// chunk, so a short last chunk and a truncated stream stay distinct to the
// caller, which knows the expected length.
func Fill(r io.Reader, p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := r.Read(p[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
