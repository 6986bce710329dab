package services

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// ErrProbeIncomplete means a probe's output lacked its closing "end="
// line: the script stopped early (sudo refused, the connection dropped).
var ErrProbeIncomplete = errors.New("the probe's answer is incomplete")

// ProbeLines reads a guest probe's "key=value" output, one line each
// (values up to 16 MiB: base64 file contents), calls each for every pair,
// and checks that the closing "end=1" line came. Lines without "=" are
// skipped; the first error of each ends the reading.
func ProbeLines(out []byte, each func(key, value string) error) error {
	complete := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if k == "end" {
			complete = true
			continue
		}
		if err := each(k, v); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read the probe's answer: %w", err)
	}
	if !complete {
		return ErrProbeIncomplete
	}
	return nil
}
